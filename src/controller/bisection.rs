//! Isolating a rejection that names no application: which of the new or changed applications
//! of a partition the BIG-IP refuses, found by posting parts of it (a pure state machine; the
//! posting is PartitionSyncer's).

use std::collections::{BTreeMap, BTreeSet};

/// At most this many posts to isolate one rejection that names no application (see
/// [`Bisection`]), however many culprits turn up.
pub const MAX_BISECTION_POSTS: usize = 40;

/// Posts allowed per culprit found while bisecting `suspects` applications: 2·⌈log2 n⌉ + 2.
pub fn bisection_posts_per_culprit(suspects: usize) -> usize {
    let ceil_log2 = if suspects <= 1 { 0 } else { (usize::BITS - (suspects - 1).leading_zeros()) as usize };
    2 * ceil_log2 + 2
}

/// What to post next while isolating a rejection that names no application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BisectionStep {
    /// Post the tenant with the new version of these suspects; every other application keeps
    /// the version the BIG-IP holds (or stays absent when it holds none).
    Post(BTreeSet<String>),
    /// Nothing left to try, or the post budget is spent: see [`Bisection::verdict`].
    Done,
}

/// What bisection found out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BisectionVerdict {
    /// Suspects the BIG-IP accepted.
    pub accepted: BTreeSet<String>,
    /// Suspects it rejected, each with the message of the post that singled it out.
    pub culprits: BTreeMap<String, String>,
    /// Suspects not told apart before the budget ran out (or the posting stopped).
    pub undecided: BTreeSet<String>,
    /// Posts asked for.
    pub posts: usize,
}

/// A group under trial and, when it is half of a group known to fail, the other half.
#[derive(Debug)]
struct Trial {
    group: Vec<String>,
    other_half: Option<(Vec<String>, String)>,
}

/// Finds the applications behind a rejection that names none, by posting parts of the
/// partition. A pure state machine: [`next_post`](Self::next_post) says what to post,
/// [`record`](Self::record) takes the BIG-IP's answer.
///
/// Strategy — grow a known-good set, never take away what the BIG-IP serves:
/// - The suspects are the applications that are new or changed compared with what the BIG-IP
///   serves; the unchanged ones are presumed good (the BIG-IP accepted them as they are).
/// - Every trial posts the new version of the suspects known good plus one group under trial;
///   every other application keeps the version the BIG-IP serves, and a new one stays absent.
///   So a trial only withholds changes: it never drops or reverts an application the BIG-IP
///   serves. (Applications removed from the partition are removed by every post, as by the
///   full one, after the same deletion guard.)
/// - A group known to fail is halved and its first half tried. Accepted: the half joins the
///   known good, and the other half is known to fail without posting it. Rejected: the half is
///   narrowed further, the other half waits untried. With no failing group left, all waiting
///   groups are tried in one post (they are usually good). A failing group of one is a culprit.
/// - Cost: a culprit among n suspects takes at most ⌈log2 n⌉ + 1 posts. The budget is
///   [`bisection_posts_per_culprit`] (2·⌈log2 n⌉ + 2) for each culprit found so far plus one,
///   and never more than [`MAX_BISECTION_POSTS`]; suspects not told apart when it runs out fail
///   with the BIG-IP's message and keep the version the BIG-IP serves.
///
/// Trade-offs: it assumes applications fail independently — when two are only rejected
/// together, the one tried second is blamed — and that the unchanged applications really are
/// good; when the BIG-IP would now refuse one of them, every trial fails and suspects are
/// blamed until the budget is spent, though nothing it serves is dropped. Each trial is a full
/// AS3 post of the tenant (seconds on a large partition), during which the partition's other
/// changes wait.
#[derive(Debug)]
pub struct Bisection {
    accepted: BTreeSet<String>,
    /// Known to fail together with `accepted`, with the BIG-IP's message.
    failing: Option<(Vec<String>, String)>,
    /// Not yet tried since the last split.
    untried: Vec<String>,
    culprits: BTreeMap<String, String>,
    trial: Option<Trial>,
    posts: usize,
    per_culprit: usize,
}

impl Bisection {
    /// Starts from `suspects`, which the BIG-IP rejected together with `message`.
    pub fn new(mut suspects: Vec<String>, message: String) -> Self {
        suspects.sort();
        suspects.dedup();
        let per_culprit = bisection_posts_per_culprit(suspects.len());
        Self {
            accepted: BTreeSet::new(),
            failing: (!suspects.is_empty()).then_some((suspects, message)),
            untried: Vec::new(),
            culprits: BTreeMap::new(),
            trial: None,
            posts: 0,
            per_culprit,
        }
    }

    fn budget(&self) -> usize {
        (self.per_culprit * (self.culprits.len() + 1)).min(MAX_BISECTION_POSTS)
    }

    fn start_trial(&mut self, trial: Trial) -> BisectionStep {
        let mut suspects = self.accepted.clone();
        suspects.extend(trial.group.iter().cloned());
        self.trial = Some(trial);
        self.posts += 1;
        BisectionStep::Post(suspects)
    }

    /// The next post; asking again before [`record`](Self::record) repeats it.
    pub fn next_post(&mut self) -> BisectionStep {
        if let Some(trial) = &self.trial {
            return BisectionStep::Post(self.accepted.iter().chain(&trial.group).cloned().collect());
        }
        loop {
            if let Some((mut group, message)) = self.failing.take() {
                if group.len() == 1 {
                    self.culprits.extend(group.into_iter().map(|name| (name, message.clone())));
                    continue;
                }
                if self.posts >= self.budget() {
                    self.failing = Some((group, message));
                    return BisectionStep::Done;
                }
                let other_half = group.split_off(group.len() / 2);
                return self.start_trial(Trial { group, other_half: Some((other_half, message)) });
            }
            if self.untried.is_empty() || self.posts >= self.budget() {
                return BisectionStep::Done;
            }
            let group = std::mem::take(&mut self.untried);
            return self.start_trial(Trial { group, other_half: None });
        }
    }

    /// The BIG-IP's answer to the last post: accepted, or rejected with its message.
    pub fn record(&mut self, answer: Result<(), String>) {
        let Some(Trial { group, other_half }) = self.trial.take() else { return };
        match answer {
            Ok(()) => {
                self.accepted.extend(group);
                // The whole group failed and this half passed: the culprit is in the other half.
                self.failing = other_half;
            }
            Err(message) => {
                self.failing = Some((group, message));
                if let Some((other_half, _)) = other_half {
                    self.untried.extend(other_half);
                }
            }
        }
    }

    /// What is known so far.
    pub fn verdict(&self) -> BisectionVerdict {
        let mut undecided: BTreeSet<String> = self.untried.iter().cloned().collect();
        undecided.extend(self.failing.iter().flat_map(|(group, _)| group.iter().cloned()));
        if let Some(trial) = &self.trial {
            undecided.extend(trial.group.iter().cloned());
            undecided.extend(trial.other_half.iter().flat_map(|(group, _)| group.iter().cloned()));
        }
        BisectionVerdict {
            accepted: self.accepted.clone(),
            culprits: self.culprits.clone(),
            undecided,
            posts: self.posts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("app{i:03}")).collect()
    }

    /// Runs a bisection against a BIG-IP that rejects any post holding one of `culprits`.
    /// Checks on the way that no post leaves out a suspect already accepted.
    fn bisect(suspects: Vec<String>, culprits: &BTreeSet<String>) -> (BisectionVerdict, Vec<BTreeSet<String>>) {
        let mut bisection = Bisection::new(suspects, "rejected at first".into());
        let mut posts = Vec::new();
        while let BisectionStep::Post(with_new) = bisection.next_post() {
            let accepted = bisection.verdict().accepted;
            assert!(with_new.is_superset(&accepted), "post {with_new:?} drops accepted {accepted:?}");
            let rejected: Vec<String> = with_new.intersection(culprits).cloned().collect();
            posts.push(with_new);
            bisection.record(if rejected.is_empty() { Ok(()) } else { Err(format!("rejected with {rejected:?}")) });
        }
        (bisection.verdict(), posts)
    }

    #[test]
    fn a_single_suspect_is_the_culprit_without_another_post() {
        let (verdict, posts) = bisect(names(0..1), &BTreeSet::from(["app000".to_string()]));
        assert!(posts.is_empty());
        assert_eq!(verdict.culprits, BTreeMap::from([("app000".to_string(), "rejected at first".to_string())]));
    }

    #[test]
    fn one_culprit_among_sixteen_takes_at_most_log2_plus_one_posts() {
        let culprit = BTreeSet::from(["app011".to_string()]);
        let (verdict, posts) = bisect(names(0..16), &culprit);
        assert_eq!(verdict.culprits.keys().cloned().collect::<BTreeSet<_>>(), culprit);
        assert_eq!(verdict.culprits["app011"], r#"rejected with ["app011"]"#, "the message of the post that showed it");
        assert_eq!(verdict.accepted.len(), 15);
        assert!(verdict.undecided.is_empty());
        assert!(posts.len() <= 4 + 1, "{} posts: {posts:?}", posts.len());
        assert_eq!(verdict.posts, posts.len());
    }

    #[test]
    fn several_culprits_are_all_found_within_the_per_culprit_budget() {
        let culprits: BTreeSet<String> = ["app003", "app004", "app077"].map(String::from).into();
        let (verdict, posts) = bisect(names(0..100), &culprits);
        assert_eq!(verdict.culprits.keys().cloned().collect::<BTreeSet<_>>(), culprits);
        assert_eq!(verdict.accepted.len(), 97);
        assert!(verdict.undecided.is_empty());
        assert!(posts.len() <= 3 * bisection_posts_per_culprit(100), "{} posts", posts.len());
    }

    #[test]
    fn the_budget_caps_the_posts_and_leaves_the_rest_undecided() {
        let everything: BTreeSet<String> = names(0..64).into_iter().collect();
        let (verdict, posts) = bisect(names(0..64), &everything);
        assert!(posts.len() <= MAX_BISECTION_POSTS, "{} posts", posts.len());
        assert!(verdict.accepted.is_empty());
        assert!(!verdict.undecided.is_empty(), "64 culprits cannot all be found in {MAX_BISECTION_POSTS} posts");
        let decided: BTreeSet<String> = verdict.culprits.keys().cloned().chain(verdict.undecided).collect();
        assert_eq!(decided, everything);
    }

    #[test]
    fn asking_again_before_an_answer_repeats_the_post() {
        let mut bisection = Bisection::new(names(0..4), "rejected".into());
        let first = bisection.next_post();
        assert_eq!(bisection.next_post(), first);
        assert_eq!(first, BisectionStep::Post(names(0..2).into_iter().collect()));
        bisection.record(Ok(()));
        assert_eq!(
            bisection.next_post(),
            BisectionStep::Post(names(0..3).into_iter().collect()),
            "accepted half + next trial"
        );
        assert_eq!(bisection.verdict().undecided, names(2..4).into_iter().collect(), "a trial in flight is undecided");
    }

    #[test]
    fn posts_per_culprit_follow_the_logarithm() {
        assert_eq!(bisection_posts_per_culprit(1), 2);
        assert_eq!(bisection_posts_per_culprit(2), 4);
        assert_eq!(bisection_posts_per_culprit(16), 10);
        assert_eq!(bisection_posts_per_culprit(17), 12);
        assert_eq!(bisection_posts_per_culprit(1000), 22);
    }

    proptest::proptest! {
        #[test]
        fn bisection_finds_exactly_the_culprits(n in 1usize..300, picks in proptest::collection::vec(0usize..300, 1..4)) {
            let suspects = names(0..n);
            let culprits: BTreeSet<String> = picks.iter().map(|i| suspects[i % n].clone()).collect();
            let (verdict, posts) = bisect(suspects.clone(), &culprits);
            proptest::prop_assert_eq!(verdict.culprits.keys().cloned().collect::<BTreeSet<_>>(), culprits.clone());
            proptest::prop_assert!(verdict.undecided.is_empty());
            proptest::prop_assert_eq!(verdict.accepted.len() + culprits.len(), n);
            let log2 = bisection_posts_per_culprit(n) / 2 - 1;
            proptest::prop_assert!(posts.len() <= culprits.len().max(1) * (log2 + 1) + 1, "{} posts for {:?}", posts.len(), culprits);
        }
    }
}
