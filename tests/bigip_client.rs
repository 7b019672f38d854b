//! The BIG-IP client and the partition syncer against the real simulator (HTTP and HTTPS).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bigip_operator::as3::{render_tenant, Ownership};
use bigip_operator::bigip::{As3Api, BigIpClient, BigIpConfig, BigIpError, Credentials, RetryPolicy, TlsVerification};
use bigip_operator::controller::partitions::{bisection_posts_per_culprit, DeletionConfirmation, SyncOutcome};
use bigip_operator::controller::PartitionSyncer;
use bigip_operator::crd::MonitorType;
use bigip_operator::metrics::Metrics;
use bigip_operator::model::{DesiredApplication, DesiredMonitor, DesiredPool, MemberState, ObjectKey, PoolMember};
use bigip_operator::simulator::{self, Faults, RunningSimulator, SimulatorConfig, TlsMode};
use bigip_operator::status::{FailureReason, ProgrammingState};
use serde_json::{json, Value};

async fn simulator(config: SimulatorConfig) -> RunningSimulator {
    simulator::start(config).await.expect("simulator starts")
}

fn client_for(sim: &RunningSimulator, password: &str) -> BigIpClient {
    let mut config = BigIpConfig::new(sim.base_url(), Credentials::new("admin", password));
    config.task_poll_interval = Duration::from_millis(50);
    config.retry = RetryPolicy {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    };
    BigIpClient::new(config).expect("client")
}

fn app(name: &str, address: &str, members: &[&str]) -> DesiredApplication {
    DesiredApplication::plain_http(
        ObjectKey { namespace: "ns".into(), name: name.into() },
        format!("ns_{name}"),
        "k8s",
        address.parse().expect("ip"),
        80,
        vec![DesiredPool::plain(
            "web",
            members
                .iter()
                .map(|a| PoolMember {
                    address: a.parse().expect("ip"),
                    port: 30080,
                    state: MemberState::Active,
                    ratio: 0,
                })
                .collect(),
        )],
    )
}

/// The cluster id of the operator under test.
/// `outcome` as a later sync that reuses it reports it: nothing posted this time.
fn not_posted(outcome: &SyncOutcome) -> SyncOutcome {
    SyncOutcome { posted: false, repaired_drift: false, ..outcome.clone() }
}

fn owner() -> Ownership {
    Ownership::new("test-cluster").expect("valid cluster id")
}

fn syncer_for(client: &Arc<BigIpClient>, sim: &RunningSimulator) -> PartitionSyncer<BigIpClient> {
    PartitionSyncer::new(client.clone(), sim.base_url(), owner(), Arc::new(Metrics::new().expect("metrics")))
}

/// Tenants as this operator renders them (labelled with its cluster id).
fn tenants(partition: &str, apps: &[DesiredApplication]) -> BTreeMap<String, Value> {
    BTreeMap::from([(partition.to_string(), render_tenant(apps, &owner()))])
}

/// Deploys tenant `other` (not the partition under test) with a virtual on `address`:80.
async fn occupy_address_in_another_tenant(client: &BigIpClient, address: &str) {
    let other_owner = Ownership::new("other-cluster").expect("valid");
    let foreign = BTreeMap::from([("other".to_string(), render_tenant(&[app("x", address, &[])], &other_owner))]);
    client.deploy_tenants(&foreign).await.expect("foreign tenant");
}

#[tokio::test]
async fn deploys_a_tenant_and_the_simulator_holds_it() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    let report = client
        .deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &["172.31.0.1", "172.31.0.2"])]))
        .await
        .expect("deploys");
    assert!(report.tenants["k8s"].succeeded(), "{report:?}");
    let virtuals = sim.state().virtual_servers();
    assert_eq!(virtuals.len(), 1);
    assert_eq!(virtuals[0].destination_address, "10.1.10.80");
    let members = sim.state().pool_members("k8s", "ns_web", "pool_web").expect("pool exists");
    assert_eq!(members.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(), ["172.31.0.1", "172.31.0.2"]);
    // What the BIG-IP holds can be read back.
    let one = client.current_tenant("k8s").await.expect("reads one").expect("held");
    assert!(one.get("ns_web").is_some());
    assert_eq!(client.current_tenant("absent").await.expect("reads one"), None);
    // Every tenant, summarised as read: the same as a summary of the whole tenant object.
    let summaries = client.tenant_summaries().await.expect("reads summaries");
    assert_eq!(summaries.keys().collect::<Vec<_>>(), ["k8s"]);
    assert_eq!(summaries["k8s"], bigip_operator::bigip::TenantSummary::of(&one));
    assert!(summaries["k8s"].applications.contains_key("ns_web"));
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_a_login_error_without_the_password() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "s3cret-wrong");
    let err = client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect_err("must fail");
    assert!(matches!(err, BigIpError::Login { status: 401, .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret-wrong"));
    assert_eq!(sim.state().declare_count(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn retries_503_with_backoff_then_succeeds() {
    let sim = simulator(SimulatorConfig::default()).await;
    sim.set_faults(Faults { fail_with_503: 3, ..Faults::default() });
    let client = client_for(&sim, "admin");
    let report =
        client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect("deploys after retries");
    assert!(report.tenants["k8s"].succeeded());
    assert_eq!(sim.state().declare_count(), 4, "three 503s, then the accepted post");
    sim.shutdown().await;
}

#[tokio::test]
async fn gives_up_on_a_503_storm_with_a_busy_error() {
    let sim = simulator(SimulatorConfig::default()).await;
    sim.set_faults(Faults { fail_with_503: 100, ..Faults::default() });
    let client = client_for(&sim, "admin");
    let err = client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect_err("busy");
    assert!(matches!(err, BigIpError::Busy { attempts: 6 }), "{err:?}");
    assert_eq!(err.reason(), "BigIpBusy");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_task_record_gone_before_it_was_read_is_a_lost_task_and_the_next_post_settles_it() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    sim.set_faults(Faults { lose_task_records: 1, ..Faults::default() });
    let declared = tenants("k8s", &[app("web", "10.1.10.80", &["172.31.0.1"])]);
    let err = client.deploy_tenants(&declared).await.expect_err("the outcome is unknown");
    assert!(matches!(&err, BigIpError::TaskLost { .. }), "{err:?}");
    assert_eq!(err.reason(), "BigIpTaskLost");
    assert!(!bigip_operator::status::FailureReason::from(&err).is_rejection(), "retried, not a verdict");
    // The declaration was applied all the same; posting it again is answered normally.
    assert!(sim.state().tenants()["k8s"].get("ns_web").is_some());
    let report = client.deploy_tenants(&declared).await.expect("the next post is read back");
    assert!(report.tenants["k8s"].succeeded(), "{report:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn logs_in_again_when_the_token_expires() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    client.deploy_tenants(&tenants("k8s", &[app("a", "10.1.10.80", &[])])).await.expect("first");
    sim.set_faults(Faults { expire_tokens_now: true, ..Faults::default() });
    let report = client
        .deploy_tenants(&tenants("k8s", &[app("a", "10.1.10.80", &[]), app("b", "10.1.10.81", &[])]))
        .await
        .expect("after re-login");
    assert!(report.tenants["k8s"].succeeded());
    assert!(sim.state().tenants()["k8s"].get("ns_b").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn short_lived_tokens_are_renewed_before_expiry() {
    let sim = simulator(SimulatorConfig { token_ttl: Duration::from_secs(2), ..SimulatorConfig::default() }).await;
    let client = client_for(&sim, "admin");
    for i in 0..3 {
        let apps = [app("a", "10.1.10.80", if i % 2 == 0 { &["172.31.0.1"] } else { &[] })];
        client.deploy_tenants(&tenants("k8s", &apps)).await.expect("deploys with a fresh token");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // Renewed before expiry: no request was refused for an expired token (a client that only
    // retries after a 401 would pass the deploys above too), and logins happened again.
    let counts = sim.state().request_counts();
    assert_eq!(counts.unauthorized, 0, "{counts:?}");
    assert!(counts.logins >= 2, "the 2 s token was renewed: {counts:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_invalid_declaration_is_refused_with_the_schema_error() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    let bad = BTreeMap::from([(
        "k8s".to_string(),
        json!({"class": "Tenant", "app": {"class": "Application", "vs": {"class": "Service_HTTP", "virtualAddresses": ["10.0.0.1"], "virtualPort": "eighty"}}}),
    )]);
    let err = client.deploy_tenants(&bad).await.expect_err("422");
    match err {
        BigIpError::InvalidDeclaration { errors } => {
            assert!(errors.iter().any(|e| e.contains("virtualPort")), "{errors:?}")
        }
        other => panic!("expected InvalidDeclaration, got {other:?}"),
    }
    assert!(sim.state().tenants().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn waits_for_slow_async_tasks() {
    let sim =
        simulator(SimulatorConfig { as3_processing_delay: Duration::from_millis(400), ..SimulatorConfig::default() })
            .await;
    let client = client_for(&sim, "admin");
    let started = std::time::Instant::now();
    let report = client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect("deploys");
    assert!(report.tenants["k8s"].succeeded());
    assert!(started.elapsed() >= Duration::from_millis(400), "the result came before the task finished");
    assert!(
        sim.state().request_counts().task_polls > 0,
        "the async task was polled: {:?}",
        sim.state().request_counts()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unreachable_bigip_is_a_typed_error() {
    let sim = simulator(SimulatorConfig::default()).await;
    let url = sim.base_url();
    sim.shutdown().await;
    let client = BigIpClient::new(BigIpConfig::new(url, Credentials::new("admin", "admin"))).expect("client");
    let err = client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect_err("down");
    assert_eq!(err.reason(), "BigIpUnreachable", "{err:?}");
}

#[tokio::test]
async fn https_with_verification_against_the_simulator_ca() {
    let sim = simulator(SimulatorConfig { tls: TlsMode::SelfSigned, ..SimulatorConfig::default() }).await;
    assert!(sim.base_url().starts_with("https://"));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_certificate_pem().expect("self-signed CA")).expect("write CA");

    let mut config = BigIpConfig::new(sim.base_url(), Credentials::new("admin", "admin"));
    config.tls = TlsVerification::CaBundle(ca);
    let client = BigIpClient::new(config).expect("client");
    client.deploy_tenants(&tenants("k8s", &[app("web", "10.1.10.80", &[])])).await.expect("verified TLS works");

    // Without the CA the certificate is refused: verification is really on.
    let untrusted =
        BigIpClient::new(BigIpConfig::new(sim.base_url(), Credentials::new("admin", "admin"))).expect("client");
    let err = untrusted.deploy_tenants(&tenants("k8s", &[])).await.expect_err("untrusted certificate");
    assert_eq!(err.reason(), "BigIpUnreachable", "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn syncer_posts_only_changed_tenants_and_removes_emptied_ones() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let a = app("a", "10.1.10.80", &["172.31.0.1"]);
    let b = app("b", "10.1.10.81", &["172.31.0.1"]);

    assert!(matches!(syncer.sync("k8s", &[a.clone(), b.clone()]).await.state, ProgrammingState::Programmed { .. }));
    assert_eq!(sim.state().declare_count(), 1);
    // Same desired state, in another order: nothing is posted.
    syncer.sync("k8s", &[b.clone(), a.clone()]).await;
    assert_eq!(sim.state().declare_count(), 1);
    // One member more: exactly one post.
    let a2 = app("a", "10.1.10.80", &["172.31.0.1", "172.31.0.2"]);
    syncer.sync("k8s", &[a2.clone(), b.clone()]).await;
    assert_eq!(sim.state().declare_count(), 2);
    // A new syncer (an operator restart) learns the deployed tenant and posts nothing.
    let restarted = syncer_for(&client, &sim);
    assert_eq!(restarted.learn_deployed_tenants().await.expect("reads"), 1);
    restarted.sync("k8s", &[a2.clone(), b.clone()]).await;
    assert_eq!(sim.state().declare_count(), 2, "a restart must not re-post unchanged tenants");
    // Emptying the partition removes the tenant; emptying it again posts nothing.
    restarted.sync("k8s", &[]).await;
    assert!(!sim.state().tenants().contains_key("k8s"));
    assert_eq!(sim.state().declare_count(), 3);
    restarted.sync("k8s", &[]).await;
    assert_eq!(sim.state().declare_count(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn syncer_reports_a_rejected_tenant_and_does_not_repost_it_unchanged() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    occupy_address_in_another_tenant(&client, "10.1.10.80").await;
    let posts_before = sim.state().declare_count();

    let syncer = syncer_for(&client, &sim);
    let outcome = syncer.sync("k8s", &[app("a", "10.1.10.80", &[])]).await;
    match &outcome.for_application("ns_a") {
        ProgrammingState::Failed { reason, message } => {
            assert_eq!(*reason, FailureReason::DeclarationFailed);
            assert!(message.contains("k8s"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(syncer.sync("k8s", &[app("a", "10.1.10.80", &[])]).await, outcome);
    assert_eq!(sim.state().declare_count(), posts_before + 1, "an unchanged rejected tenant is not re-posted");
    assert!(sim.state().tenants().contains_key("other"), "the foreign tenant is untouched");
    sim.shutdown().await;
}

#[tokio::test]
async fn one_rejected_application_is_left_out_and_the_rest_of_the_partition_is_programmed() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    occupy_address_in_another_tenant(&client, "10.1.10.80").await;

    let syncer = syncer_for(&client, &sim);
    let good = app("good", "10.1.10.81", &["172.31.0.1"]);
    let clashing = app("clash", "10.1.10.80", &["172.31.0.1"]);
    let also_good = app("fine", "10.1.10.82", &[]);
    let outcome = syncer.sync("k8s", &[good.clone(), clashing.clone(), also_good.clone()]).await;

    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert!(matches!(outcome.for_application("ns_good"), ProgrammingState::Programmed { .. }));
    match outcome.for_application("ns_clash") {
        ProgrammingState::Failed { reason, message } => {
            assert_eq!(reason, FailureReason::DeclarationFailed);
            assert!(message.contains("/k8s/ns_clash/") && message.contains("illegally shares"), "{message}");
        }
        other => panic!("the clashing application must fail, got {other:?}"),
    }
    let tenant = sim.state().tenants()["k8s"].clone();
    assert!(tenant.get("ns_good").is_some() && tenant.get("ns_fine").is_some(), "{tenant}");
    assert!(tenant.get("ns_clash").is_none());
    assert!(sim.state().tenants().contains_key("other"), "the foreign tenant is untouched");

    // Unchanged input: the cached outcome, no post.
    let posts = sim.state().declare_count();
    assert_eq!(
        syncer.sync("k8s", &[good.clone(), clashing.clone(), also_good.clone()]).await,
        not_posted(&outcome),
        "the cached outcome; nothing posted"
    );
    assert_eq!(sim.state().declare_count(), posts);
    // The clash fixed: it joins the partition with one post.
    let fixed = app("clash", "10.1.10.83", &["172.31.0.1"]);
    let outcome = syncer.sync("k8s", &[good, fixed, also_good]).await;
    assert!(outcome.excluded.is_empty(), "{outcome:?}");
    assert!(sim.state().tenants()["k8s"].get("ns_clash").is_some());
    assert_eq!(sim.state().declare_count(), posts + 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn out_of_band_changes_are_detected_and_repaired() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let apps = [app("a", "10.1.10.80", &["172.31.0.1", "172.31.0.2"])];
    syncer.sync("k8s", &apps).await;
    assert_eq!(syncer.detect_drift().await.expect("reads"), Vec::<String>::new(), "no drift right after deploying");

    // Someone edits the tenant on the BIG-IP: a member removed.
    client.deploy_tenants(&tenants("k8s", &[app("a", "10.1.10.80", &["172.31.0.1"])])).await.expect("edit");
    assert_eq!(syncer.detect_drift().await.expect("reads"), vec!["k8s".to_string()]);
    syncer.sync("k8s", &apps).await;
    assert_eq!(sim.state().pool_members("k8s", "ns_a", "pool_web").expect("pool").len(), 2, "repaired");

    // Someone deletes the tenant.
    client.deploy_tenants(&BTreeMap::from([("k8s".to_string(), json!({"class": "Tenant"}))])).await.expect("delete");
    assert_eq!(syncer.detect_drift().await.expect("reads"), vec!["k8s".to_string()]);
    syncer.sync("k8s", &apps).await;
    assert!(sim.state().tenants().contains_key("k8s"), "re-created");
    assert_eq!(syncer.detect_drift().await.expect("reads"), Vec::<String>::new());
    sim.shutdown().await;
}

#[tokio::test]
async fn tenants_of_others_are_never_written_unless_adopted() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    // A hand-made tenant (no label) and one of the operator of another cluster.
    let hand_made = json!({"class": "Tenant", "manual": {"class": "Application", "template": "generic"}});
    client.deploy_tenants(&BTreeMap::from([("hand".to_string(), hand_made.clone())])).await.expect("hand-made");
    let west = Ownership::new("west").expect("valid");
    client
        .deploy_tenants(&BTreeMap::from([("shared".to_string(), render_tenant(&[app("w", "10.1.10.90", &[])], &west))]))
        .await
        .expect("other cluster");
    let posts = sim.state().declare_count();

    let syncer = syncer_for(&client, &sim);
    assert_eq!(syncer.learn_deployed_tenants().await.expect("reads"), 0, "neither tenant is ours");
    for partition in ["hand", "shared"] {
        match syncer.sync(partition, &[app("a", "10.1.10.80", &[])]).await.state {
            ProgrammingState::Failed { reason, message } => {
                assert_eq!(reason, FailureReason::PartitionNotOwned);
                assert!(message.contains("--adopt-partition") && message.contains(partition), "{message}");
            }
            other => panic!("{partition}: expected PartitionNotOwned, got {other:?}"),
        }
        // Emptying a partition that is not ours deletes nothing either.
        syncer.sync(partition, &[]).await;
    }
    assert_eq!(sim.state().declare_count(), posts, "nothing was posted");
    assert_eq!(sim.state().tenants()["hand"], hand_made);
    assert!(sim.state().tenants()["shared"].get("ns_w").is_some());

    // Explicit adoption takes the hand-made tenant over, and from then on it is ours.
    let adopting = syncer_for(&client, &sim).adopting(["hand".to_string()]);
    assert!(matches!(
        adopting.sync("hand", &[app("a", "10.1.10.80", &[])]).await.state,
        ProgrammingState::Programmed { .. }
    ));
    let tenant = &sim.state().tenants()["hand"];
    assert!(tenant.get("ns_a").is_some() && tenant.get("manual").is_none(), "{tenant}");
    assert_eq!(owner().owner_of(tenant), bigip_operator::as3::TenantOwner::Us);
    sim.shutdown().await;
}

/// Answers like the apiserver would: the applications are gone only when `gone` says so.
struct FixedConfirmation {
    gone: std::sync::atomic::AtomicBool,
    asked: std::sync::atomic::AtomicUsize,
}

impl DeletionConfirmation for FixedConfirmation {
    fn confirm<'a>(
        &'a self,
        _partition: &'a str,
        _removed: &'a std::collections::BTreeSet<String>,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>> {
        use std::sync::atomic::Ordering;
        self.asked.fetch_add(1, Ordering::SeqCst);
        let gone = self.gone.load(Ordering::SeqCst);
        Box::pin(async move { Ok(gone) })
    }
}

#[tokio::test]
async fn a_post_deleting_most_applications_waits_for_confirmation() {
    use std::sync::atomic::Ordering;
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let confirmation = Arc::new(FixedConfirmation { gone: false.into(), asked: 0.into() });
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let syncer = PartitionSyncer::new(client.clone(), sim.base_url(), owner(), metrics.clone())
        .with_deletion_guard(0.5, confirmation.clone());
    let apps: Vec<DesiredApplication> =
        (0..4).map(|i| app(&format!("a{i}"), &format!("10.1.10.{}", 80 + i), &[])).collect();
    assert!(matches!(syncer.sync("k8s", &apps).await.state, ProgrammingState::Programmed { .. }));

    // Half of them go: within the share, no confirmation needed.
    assert!(matches!(syncer.sync("k8s", &apps[..2]).await.state, ProgrammingState::Programmed { .. }));
    assert_eq!(confirmation.asked.load(Ordering::SeqCst), 0);
    assert_eq!(sim.state().tenants()["k8s"].as_object().map(|t| t.len()), Some(2 + 3), "2 apps + class, label, remark");

    // Back to 4, then a cache that suddenly lacks 3 of them: held, nothing deleted.
    syncer.sync("k8s", &apps).await;
    let posts = sim.state().declare_count();
    match syncer.sync("k8s", &apps[..1]).await.state {
        ProgrammingState::Failed { reason, message } => {
            assert_eq!(reason, FailureReason::DeletionHeld);
            assert!(message.contains("3 of the 4"), "{message}");
        }
        other => panic!("expected DeletionHeld, got {other:?}"),
    }
    assert_eq!(sim.state().declare_count(), posts, "nothing posted while unconfirmed");
    assert_eq!(metrics.deletions_held.get(), 1);
    for name in ["ns_a0", "ns_a1", "ns_a2", "ns_a3"] {
        assert!(sim.state().tenants()["k8s"].get(name).is_some(), "{name} kept");
    }

    // Confirmed by a fresh list: the deletion goes through.
    confirmation.gone.store(true, Ordering::SeqCst);
    assert!(matches!(syncer.sync("k8s", &apps[..1]).await.state, ProgrammingState::Programmed { .. }));
    assert!(sim.state().tenants()["k8s"].get("ns_a3").is_none());
    assert_eq!(confirmation.asked.load(Ordering::SeqCst), 2);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Isolation: pre-flight validation and bisection of rejections that name no application

/// `app` with a monitor probing every `interval` seconds (AS3 allows at most 3600). Built
/// directly, so the model's own validation is bypassed.
fn monitored_app(name: &str, address: &str, interval: u32) -> DesiredApplication {
    let mut app = app(name, address, &["172.31.0.1"]);
    app.pools[0].monitors = vec![DesiredMonitor {
        monitor_type: MonitorType::Http,
        send: None,
        receive: None,
        interval,
        timeout: 16,
        target_port: None,
        time_until_up: None,
        ssl_profile: None,
    }];
    app
}

fn application_names_on(sim: &RunningSimulator, partition: &str) -> Vec<String> {
    let tenants = sim.state().tenants();
    let Some(tenant) = tenants.get(partition).and_then(Value::as_object) else { return vec![] };
    tenant.iter().filter(|(_, v)| v["class"] == "Application").map(|(name, _)| name.clone()).collect()
}

/// No change recorded after `seq` took an application away from `partition`.
fn assert_no_application_was_dropped_after(sim: &RunningSimulator, partition: &str, seq: u64) {
    for change in sim.state().history().iter().filter(|c| c.seq > seq && c.tenant == partition) {
        let dropped: Vec<&String> =
            change.applications_before.iter().filter(|a| !change.applications_after.contains(a)).collect();
        assert!(dropped.is_empty(), "change {} dropped {dropped:?}", change.seq);
    }
}

#[tokio::test]
async fn an_application_invalid_before_posting_is_left_out_and_the_rest_is_deployed() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let good = monitored_app("good", "10.1.10.80", 5);
    let invalid = monitored_app("slow", "10.1.10.81", 5000);
    let also_good = app("fine", "10.1.10.82", &[]);
    let apps = [good.clone(), invalid.clone(), also_good.clone()];

    let outcome = syncer.sync("k8s", &apps).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert!(matches!(outcome.for_application("ns_good"), ProgrammingState::Programmed { .. }));
    assert!(matches!(outcome.for_application("ns_fine"), ProgrammingState::Programmed { .. }));
    match outcome.for_application("ns_slow") {
        ProgrammingState::Failed { reason, message } => {
            assert_eq!(reason, FailureReason::DeclarationInvalid);
            assert!(message.contains("checked before posting"), "{message}");
            assert!(message.contains("/declaration/k8s/ns_slow/monitor_web_0/interval: "), "{message}");
        }
        other => panic!("the invalid application must fail, got {other:?}"),
    }
    assert_eq!(application_names_on(&sim, "k8s"), ["ns_fine", "ns_good"]);
    assert_eq!(sim.state().declare_count(), 1, "one post, without the invalid application");
    assert_eq!(sim.state().virtual_servers().len(), 2);

    // Unchanged: the same outcome, nothing posted.
    assert_eq!(syncer.sync("k8s", &apps).await, not_posted(&outcome), "the cached outcome; nothing posted");
    assert_eq!(sim.state().declare_count(), 1);
    // Fixed: it joins with one post.
    let outcome = syncer.sync("k8s", &[good, monitored_app("slow", "10.1.10.81", 30), also_good]).await;
    assert!(outcome.excluded.is_empty(), "{outcome:?}");
    assert_eq!(application_names_on(&sim, "k8s"), ["ns_fine", "ns_good", "ns_slow"]);
    assert_eq!(sim.state().declare_count(), 2);
    sim.shutdown().await;
}

/// Posts a sync may make for `n` suspects and one culprit: the failing full post, the
/// bisection budget for one culprit, and the post that removes the culprit's old version.
fn post_bound(suspects: usize) -> u64 {
    (1 + bisection_posts_per_culprit(suspects) + 1) as u64
}

#[tokio::test]
async fn a_rejection_naming_no_application_is_bisected_down_to_the_culprit() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let (a, b, c) = (app("a", "10.1.10.80", &["172.31.0.1"]), app("b", "10.1.10.81", &[]), app("c", "10.1.10.82", &[]));
    syncer.sync("k8s", &[a.clone(), b.clone(), c.clone()]).await;
    let deployed_at = sim.state().history().last().map(|c| c.seq).expect("deployed");
    sim.set_faults(Faults { reject_tenants_with_application: Some("ns_bad".into()), ..Faults::default() });

    // a changes, d is new, and bad is new: the BIG-IP rejects the tenant naming nothing.
    let a2 = app("a", "10.1.10.80", &["172.31.0.1", "172.31.0.2"]);
    let d = app("d", "10.1.10.83", &[]);
    let bad = app("bad", "10.1.10.84", &[]);
    let apps = [a2.clone(), b.clone(), bad.clone(), c.clone(), d.clone()];
    let posts_before = sim.state().declare_count();
    let outcome = syncer.sync("k8s", &apps).await;
    let posts = sim.state().declare_count() - posts_before;
    eprintln!("bisection: 3 suspects (a changed, bad and d new) among 5 applications: {posts} posts");

    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(outcome.excluded.keys().collect::<Vec<_>>(), ["ns_bad"], "{outcome:?}");
    match outcome.for_application("ns_bad") {
        ProgrammingState::Failed { reason, message } => {
            assert_eq!(reason, FailureReason::DeclarationFailed);
            assert!(message.contains(simulator::ANONYMOUS_REJECTION), "the BIG-IP's message: {message}");
            assert!(message.contains("singled out"), "{message}");
        }
        other => panic!("the culprit must fail, got {other:?}"),
    }
    assert_eq!(application_names_on(&sim, "k8s"), ["ns_a", "ns_b", "ns_c", "ns_d"]);
    assert_eq!(sim.state().pool_members("k8s", "ns_a", "pool_web").expect("pool").len(), 2, "a's change is deployed");
    assert!(posts <= post_bound(3), "{posts} posts");
    assert_no_application_was_dropped_after(&sim, "k8s", deployed_at);

    // Unchanged: nothing posted. Another change isolates again, now from the good ones served.
    assert_eq!(syncer.sync("k8s", &apps).await, not_posted(&outcome), "the cached outcome; nothing posted");
    assert_eq!(sim.state().declare_count() - posts_before, posts);
    let b2 = app("b", "10.1.10.81", &["172.31.0.9"]);
    let posts_before = sim.state().declare_count();
    let outcome = syncer.sync("k8s", &[a2.clone(), b2.clone(), bad.clone(), c.clone(), d.clone()]).await;
    assert_eq!(outcome.excluded.keys().collect::<Vec<_>>(), ["ns_bad"], "{outcome:?}");
    assert_eq!(sim.state().declare_count() - posts_before, 2, "the full post, then b alone with the served ones");
    assert_eq!(sim.state().pool_members("k8s", "ns_b", "pool_web").expect("pool").len(), 1);

    // The BIG-IP takes it once the cause is gone (here: the fault cleared) and the partition changes.
    sim.set_faults(Faults::default());
    let outcome = syncer.sync("k8s", &[a2, b, bad, c, d]).await;
    assert!(outcome.excluded.is_empty(), "{outcome:?}");
    assert!(application_names_on(&sim, "k8s").contains(&"ns_bad".to_string()));
    sim.shutdown().await;
}

#[tokio::test]
async fn one_culprit_among_many_new_applications_costs_a_logarithmic_number_of_posts() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    sim.set_faults(Faults { reject_tenants_with_application: Some("ns_bad".into()), ..Faults::default() });
    let mut apps: Vec<DesiredApplication> =
        (0..31).map(|i| app(&format!("app{i:02}"), &format!("10.1.11.{i}"), &[])).collect();
    apps.push(app("bad", "10.1.12.1", &[]));

    let outcome = syncer.sync("k8s", &apps).await;
    let posts = sim.state().declare_count();
    eprintln!("bisection: 1 culprit among 32 new applications: {posts} posts");
    assert_eq!(outcome.excluded.keys().collect::<Vec<_>>(), ["ns_bad"], "{outcome:?}");
    assert_eq!(application_names_on(&sim, "k8s").len(), 31);
    assert!(posts <= post_bound(32), "{posts} posts");
    assert!(posts <= 1 + 5 + 1, "log2(32) + 1 trials after the full post: {posts}");
    sim.shutdown().await;
}

#[tokio::test]
async fn isolation_never_drops_served_applications_past_the_deletion_guard() {
    use std::sync::atomic::Ordering;
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let confirmation = Arc::new(FixedConfirmation { gone: false.into(), asked: 0.into() });
    // A share of 0: any deletion needs a fresh list to confirm it, and the list says no.
    let syncer =
        PartitionSyncer::new(client.clone(), sim.base_url(), owner(), Arc::new(Metrics::new().expect("metrics")))
            .with_deletion_guard(0.0, confirmation.clone());
    let apps: Vec<DesiredApplication> =
        (0..4).map(|i| monitored_app(&format!("a{i}"), &format!("10.1.10.{}", 80 + i), 5)).collect();
    assert!(matches!(syncer.sync("k8s", &apps).await.state, ProgrammingState::Programmed { .. }));
    let deployed_at = sim.state().history().last().map(|c| c.seq).expect("deployed");

    // a1 now renders invalid: leaving it out would delete it, which the guard holds.
    let mut changed = apps.clone();
    changed[1] = monitored_app("a1", "10.1.10.81", 5000);
    let posts = sim.state().declare_count();
    let outcome = syncer.sync("k8s", &changed).await;
    assert!(
        matches!(&outcome.for_application("ns_a1"), ProgrammingState::Failed { reason, .. } if *reason == FailureReason::DeclarationInvalid)
    );
    assert!(
        matches!(&outcome.state, ProgrammingState::Failed { reason, .. } if *reason == FailureReason::DeletionHeld),
        "{outcome:?}"
    );
    assert_eq!(sim.state().declare_count(), posts, "nothing posted");
    assert_eq!(confirmation.asked.load(Ordering::SeqCst), 1);

    // a2 changes to something the BIG-IP rejects without naming it; a3 changes fine.
    sim.set_faults(Faults { reject_tenants_with_application: Some("ns_a2".into()), ..Faults::default() });
    let mut changed = apps.clone();
    changed[2].pools[0].members.clear();
    changed[3].pools[0].members.clear();
    let outcome = syncer.sync("k8s", &changed).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(outcome.excluded.keys().collect::<Vec<_>>(), ["ns_a2"], "{outcome:?}");
    match outcome.for_application("ns_a2") {
        ProgrammingState::Failed { message, .. } => {
            assert!(message.contains("keeps the version it held before"), "the guard kept the old a2: {message}")
        }
        other => panic!("a2 must fail, got {other:?}"),
    }
    assert_eq!(application_names_on(&sim, "k8s"), ["ns_a0", "ns_a1", "ns_a2", "ns_a3"]);
    assert_eq!(sim.state().pool_members("k8s", "ns_a2", "pool_web").expect("pool").len(), 1, "old a2 served");
    assert!(sim.state().pool_members("k8s", "ns_a3", "pool_web").expect("pool").is_empty(), "a3's change deployed");
    assert_no_application_was_dropped_after(&sim, "k8s", deployed_at);
    assert_eq!(confirmation.asked.load(Ordering::SeqCst), 2, "only the final post would have dropped one (a2)");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_removal_goes_through_when_the_only_other_change_is_rejected_anonymously() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let (a, b) = (app("a", "10.1.10.80", &[]), app("b", "10.1.10.81", &[]));
    syncer.sync("k8s", &[a.clone(), b.clone()]).await;
    sim.set_faults(Faults { reject_tenants_with_application: Some("ns_bad".into()), ..Faults::default() });

    // b is deleted (its finalizer waits for this sync) while a new, rejected application arrives.
    let posts = sim.state().declare_count();
    let outcome = syncer.sync("k8s", &[a, app("bad", "10.1.10.82", &[])]).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "the removal is done: {outcome:?}");
    assert_eq!(outcome.excluded.keys().collect::<Vec<_>>(), ["ns_bad"]);
    assert_eq!(application_names_on(&sim, "k8s"), ["ns_a"]);
    assert_eq!(sim.state().declare_count() - posts, 2, "the rejected full post, then the tenant without bad");
    sim.shutdown().await;
}

/// The iControl REST network client against the simulator: the VXLAN objects are created once
/// and left alone when already right; the tunnel's MAC, FDB records and ARP entries round-trip.
#[tokio::test]
async fn network_objects_of_a_vxlan_tunnel_round_trip() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    for _ in 0..2 {
        client.ensure_vxlan_profile("fl-profile", 8472).await.expect("profile");
        client.ensure_tunnel("fl", "fl-profile", "192.168.1.254").await.expect("tunnel");
        client.ensure_self_ip("fl-self", "10.244.200.1/16", "fl").await.expect("self IP");
    }
    assert_eq!(sim.state().tunnels().len(), 1);
    assert_eq!(sim.state().self_ips().len(), 1);
    client.ensure_tunnel("fl", "fl-profile", "192.168.1.253").await.expect("local address changed");
    assert_eq!(sim.state().tunnels()[0].local_address, "192.168.1.253");

    assert_eq!(client.tunnel_mac("fl").await.expect("mac"), simulator::tunnel_mac("fl"));
    let records = vec![("aa:bb:cc:dd:ee:01".to_string(), "10.0.0.1".to_string())];
    client.replace_fdb_records("fl", &records).await.expect("fdb");
    assert_eq!(client.fdb_records("fl").await.expect("read fdb"), records);

    client.create_arp("k8s-10.244.1.5", "10.244.1.5", "aa:bb:cc:dd:ee:01").await.expect("arp");
    let arp = client.arp_records().await.expect("list arp");
    assert_eq!(arp.len(), 1);
    assert_eq!((arp[0].ip_address.as_str(), arp[0].mac_address.as_str()), ("10.244.1.5", "aa:bb:cc:dd:ee:01"));
    let duplicate = client.create_arp("k8s-other", "10.244.1.5", "aa:bb:cc:dd:ee:02").await.expect_err("same address");
    assert!(duplicate.to_string().contains("409"), "{duplicate}");
    client.delete_arp("k8s-10.244.1.5").await.expect("delete");
    assert!(sim.state().arp_entries().is_empty());

    let neighbors = vec![("10.0.0.1".to_string(), 64513), ("10.0.0.2".to_string(), 64513)];
    client.ensure_bgp("bigip-operator", 64512, &neighbors, None).await.expect("bgp");
    client.ensure_bgp("bigip-operator", 64512, &neighbors[..1], None).await.expect("bgp, one neighbor fewer");
    let bgp = sim.state().bgp();
    assert_eq!((bgp.len(), bgp[0].local_as, bgp[0].neighbor.len()), (1, 64512, 1));
    assert_eq!((bgp[0].neighbor[0].name.as_str(), bgp[0].neighbor[0].remote_as), ("10.0.0.1", 64513));
}

/// Only what the client created is deleted: objects it made carry the managed description,
/// one that existed before (made by hand) is adopted but kept; a changed self IP address,
/// which BIG-IP cannot modify, replaces the self IP.
#[tokio::test]
async fn only_objects_the_operator_created_are_removed() {
    use bigip_operator::bigip::{NetKind, Removal};
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    // Made by hand before the operator: a profile and tunnel without our description.
    let by_hand = reqwest::Client::new();
    for (path, body) in [
        ("/mgmt/tm/net/tunnels/vxlan", json!({"name": "old-profile", "floodingType": "none", "port": 8472})),
        (
            "/mgmt/tm/net/tunnels/tunnel",
            json!({"name": "old", "profile": "/Common/old-profile", "localAddress": "192.168.1.9"}),
        ),
    ] {
        let response = by_hand
            .post(format!("{}{path}", sim.base_url()))
            .basic_auth("admin", Some("admin"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert!(response.status().is_success(), "{path}: {}", response.text().await.unwrap_or_default());
    }
    client.ensure_tunnel("old", "old-profile", "192.168.1.254").await.expect("adopted");
    assert_eq!(
        sim.state().tunnels().iter().find(|t| t.name == "old").map(|t| t.local_address.clone()).as_deref(),
        Some("192.168.1.254")
    );

    client.ensure_vxlan_profile("new-profile", 8472).await.expect("profile");
    client.ensure_tunnel("new", "new-profile", "192.168.1.254").await.expect("tunnel");
    client.ensure_self_ip("new-self", "10.244.200.1/16", "new").await.expect("self IP");
    client.ensure_self_ip("new-self", "10.245.200.1/16", "new").await.expect("a new address replaces the self IP");
    let self_ips = sim.state().self_ips();
    assert_eq!(self_ips.iter().map(|s| s.address.as_str()).collect::<Vec<_>>(), ["10.245.200.1/16"]);
    assert_eq!(self_ips[0].description.as_deref(), Some(bigip_operator::bigip::net::MANAGED_DESCRIPTION));

    assert_eq!(client.remove_managed(NetKind::Tunnel, "old").await.expect("old"), Removal::Kept);
    assert_eq!(client.remove_managed(NetKind::VxlanProfile, "old-profile").await.expect("old profile"), Removal::Kept);
    assert_eq!(client.remove_managed(NetKind::SelfIp, "new-self").await.expect("self"), Removal::Deleted);
    assert_eq!(client.remove_managed(NetKind::Tunnel, "new").await.expect("tunnel"), Removal::Deleted);
    assert_eq!(client.remove_managed(NetKind::VxlanProfile, "new-profile").await.expect("profile"), Removal::Deleted);
    assert_eq!(client.remove_managed(NetKind::Tunnel, "new").await.expect("again"), Removal::Absent);
    let tunnels: Vec<String> = sim.state().tunnels().into_iter().map(|t| t.name).collect();
    assert_eq!(tunnels, ["old"]);
    sim.shutdown().await;
}

/// The client reads the BIG-IP's version; on a release without `/mgmt/tm/net/routing` a BGP
/// create is an error naming the path (not a silent success on 404).
#[tokio::test]
async fn the_version_is_read_and_missing_collections_are_errors() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    assert_eq!(client.version().await.expect("version").to_string(), "17.1.0");
    sim.set_faults(Faults { tmos_version: Some("13.1.3".into()), ..Faults::default() });
    assert_eq!(client.version().await.expect("version").to_string(), "13.1.3");
    let error = client.ensure_bgp("bigip-operator", 64512, &[], None).await.expect_err("no routing on 13.1");
    assert!(error.to_string().contains("404") && error.to_string().contains("not registered"), "{error}");
    sim.shutdown().await;
}

/// BGP route filters: a prefix list and a route map the neighbours use inbound, rewritten when
/// the filters change, removable in order (instance, route map, prefix list) and not before.
#[tokio::test]
async fn bgp_route_filters_round_trip() {
    use bigip_operator::bigip::{NetKind, Removal};
    use bigip_operator::crd::{RouteFilter, RouteFilterAction};
    use bigip_operator::model::bgp::prefix_list_entries;
    let sim = simulator(SimulatorConfig::default()).await;
    let client = client_for(&sim, "admin");
    let filters = vec![
        RouteFilter {
            prefix: "10.244.7.0/24".into(),
            action: RouteFilterAction::Deny,
            min_length: None,
            max_length: None,
        },
        RouteFilter {
            prefix: "10.244.0.0/16".into(),
            action: RouteFilterAction::Permit,
            min_length: None,
            max_length: Some(26),
        },
    ];
    let entries = prefix_list_entries(&filters).expect("valid");
    let neighbors = vec![("10.0.0.1".to_string(), 64513)];
    for _ in 0..2 {
        client.ensure_prefix_list("in", &entries).await.expect("prefix list");
        client.ensure_route_map("in", "in").await.expect("route map");
        client.ensure_bgp("bigip-operator", 64512, &neighbors, Some("/Common/in")).await.expect("bgp");
    }
    let lists = sim.state().prefix_lists();
    let shown: Vec<(u32, String, String, Option<String>)> = lists[0]
        .entries
        .iter()
        .map(|(seq, e)| (*seq, e.action.clone(), e.prefix.clone(), e.prefix_len_range.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (10, "deny".into(), "10.244.7.0/24".into(), None),
            (20, "permit".into(), "10.244.0.0/16".into(), Some("16:26".into()))
        ]
    );
    let bgp = sim.state().bgp();
    let family = &bgp[0].neighbor[0].address_family;
    assert_eq!(family[0].route_map.as_ref().and_then(|r| r.inbound.as_deref()), Some("/Common/in"));

    let fewer = prefix_list_entries(&filters[1..]).expect("valid");
    client.ensure_prefix_list("in", &fewer).await.expect("one filter fewer");
    assert_eq!(sim.state().prefix_lists()[0].entries.len(), 1);

    let in_use = client.remove_managed(NetKind::RouteMap, "in").await.expect_err("the neighbor uses it");
    assert!(in_use.to_string().contains("in use"), "{in_use}");
    client.ensure_bgp("bigip-operator", 64512, &neighbors, None).await.expect("bgp without filters");
    assert!(sim.state().bgp()[0].neighbor[0].address_family.is_empty());
    assert_eq!(client.remove_managed(NetKind::RouteMap, "in").await.expect("route map"), Removal::Deleted);
    assert_eq!(client.remove_managed(NetKind::PrefixList, "in").await.expect("prefix list"), Removal::Deleted);
    assert!(sim.state().prefix_lists().is_empty() && sim.state().route_maps().is_empty());
    sim.shutdown().await;
}

/// Regression (lost update): a sync that waits for its partition while another post is in
/// flight must post the desired state of when it gets the partition, not a snapshot taken
/// before it waited — that older snapshot would revert a newer change on the BIG-IP until the
/// next resync. (Before the fix the reconcile built the fleet first and passed it to `sync`.)
#[tokio::test]
async fn a_sync_waiting_for_its_partition_posts_the_state_current_when_it_runs() {
    let sim =
        simulator(SimulatorConfig { as3_processing_delay: Duration::from_millis(400), ..SimulatorConfig::default() })
            .await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = Arc::new(syncer_for(&client, &sim));
    let version = |member: &str| vec![app("web", "10.1.10.80", &[member])];
    let desired = Arc::new(std::sync::Mutex::new(version("172.31.0.1")));
    let current = |desired: &Arc<std::sync::Mutex<Vec<DesiredApplication>>>| {
        let desired = desired.clone();
        move || desired.lock().expect("desired").clone()
    };

    // A post of the first version is in flight (the simulator takes 400 ms)...
    let first = tokio::spawn({
        let (syncer, read) = (syncer.clone(), current(&desired));
        async move { syncer.sync_current("k8s", read, &BTreeSet::new()).await }
    });
    for _ in 0..200 {
        if sim.state().declare_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(sim.state().declare_count() > 0, "the first post started");
    // ...a reconcile for the second version starts and waits for the partition...
    *desired.lock().expect("desired") = version("172.31.0.2");
    let second = tokio::spawn({
        let (syncer, read) = (syncer.clone(), current(&desired));
        async move { syncer.sync_current("k8s", read, &BTreeSet::new()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...and a third version arrives while it waits (its own reconcile comes later, if ever).
    *desired.lock().expect("desired") = version("172.31.0.3");
    assert!(matches!(first.await.expect("first").state, ProgrammingState::Programmed { .. }));
    assert!(matches!(second.await.expect("second").state, ProgrammingState::Programmed { .. }));

    let members = sim.state().pool_members("k8s", "ns_web", "pool_web").expect("pool");
    assert_eq!(
        members.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        ["172.31.0.3"],
        "the newest state is on the BIG-IP"
    );
    sim.shutdown().await;
}

/// An application whose object cannot be read (kept_as_deployed) stays on the BIG-IP as it is,
/// also for an operator that never read the object (restarted after it became unreadable),
/// while the rest of the partition is updated; once the object is gone it is removed.
#[tokio::test]
async fn applications_of_unreadable_objects_are_kept_as_the_bigip_holds_them() {
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let (a, b) = (app("a", "10.1.10.80", &["172.31.0.1"]), app("b", "10.1.10.81", &["172.31.0.2"]));
    assert!(matches!(syncer.sync("k8s", &[a.clone(), b.clone()]).await.state, ProgrammingState::Programmed { .. }));
    let kept = BTreeSet::from([b.name.clone()]);
    let members = |app: &str| {
        sim.state()
            .pool_members("k8s", app, "pool_web")
            .map(|m| m.iter().map(|m| m.address.clone()).collect::<Vec<_>>())
    };

    // A restarted operator: it has never read "b", whose object is unreadable now.
    let restarted = syncer_for(&client, &sim);
    restarted.learn_deployed_tenants().await.expect("reads the BIG-IP");
    let a2 = app("a", "10.1.10.80", &["172.31.0.9"]);
    let outcome = restarted.sync_current("k8s", || vec![a2.clone()], &kept).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(members("ns_a"), Some(vec!["172.31.0.9".to_string()]), "the rest of the partition is updated");
    assert_eq!(members("ns_b"), Some(vec!["172.31.0.2".to_string()]), "b is kept as the BIG-IP held it");
    never_removed_b(&sim.state().history());

    // The object is deleted (no longer kept): its application goes.
    restarted.sync_current("k8s", || vec![a2.clone()], &BTreeSet::new()).await;
    assert_eq!(members("ns_b"), None);
    sim.shutdown().await;
}

fn never_removed_b(history: &[bigip_operator::simulator::ChangeRecord]) {
    for change in history {
        let removed = change.applications_before.iter().any(|a| a == "ns_b")
            && !change.applications_after.iter().any(|a| a == "ns_b");
        assert!(!removed, "b was removed: {change:?}");
    }
}

/// The change records of `tenant` after change number `after`, as (action, applications after).
fn actions_after(sim: &RunningSimulator, tenant: &str, after: u64) -> Vec<(simulator::ChangeAction, usize)> {
    sim.state()
        .history_since(after)
        .into_iter()
        .filter(|record| record.tenant == tenant)
        .map(|record| (record.action, record.applications_after.len()))
        .collect()
}

fn tenant_label(sim: &RunningSimulator, tenant: &str) -> Option<String> {
    sim.state().tenants().get(tenant)?.get("label")?.as_str().map(str::to_string)
}

/// Scale: a change of one application of a large tenant sends that application alone (AS3's
/// per-application API), a removal deletes just it; the tenant itself is created and removed
/// by whole-tenant declarations, so it always carries the ownership label.
#[tokio::test]
async fn small_changes_go_through_the_per_application_api_and_tenants_are_created_and_removed_whole() {
    use simulator::ChangeAction::{ApplicationDeleted, ApplicationsDeployed, Deleted, Deployed};
    let sim = simulator(SimulatorConfig::default()).await;
    let client = Arc::new(client_for(&sim, "admin"));
    let syncer = syncer_for(&client, &sim);
    let mut apps: Vec<DesiredApplication> =
        (0..40).map(|i| app(&format!("app{i:02}"), &format!("10.1.10.{}", i + 10), &["172.31.0.1"])).collect();

    let outcome = syncer.sync("k8s", &apps).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(actions_after(&sim, "k8s", 0), [(Deployed, 40)], "a new tenant is declared whole");
    let label = tenant_label(&sim, "k8s").expect("the tenant carries the ownership label");

    // One application changes: one small request.
    let (seq, bytes) = (sim.state().change_count(), sim.state().request_counts().declare_bytes);
    apps[7] = app("app07", "10.1.10.17", &["172.31.0.1", "172.31.0.2"]);
    let outcome = syncer.sync("k8s", &apps).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(actions_after(&sim, "k8s", seq), [(ApplicationsDeployed, 40)]);
    let sent = sim.state().request_counts().declare_bytes - bytes;
    assert!(sent < 2_000, "one application, not the tenant: {sent} bytes");
    assert_eq!(sim.state().pool_members("k8s", "ns_app07", "pool_web").expect("pool").len(), 2);

    // Two removed, one added: the new one in one request, each removed one deleted.
    let seq = sim.state().change_count();
    apps.retain(|a| a.name != "ns_app03" && a.name != "ns_app04");
    apps.push(app("new", "10.1.10.99", &[]));
    let outcome = syncer.sync("k8s", &apps).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(
        actions_after(&sim, "k8s", seq),
        [(ApplicationsDeployed, 41), (ApplicationDeleted, 40), (ApplicationDeleted, 39)]
    );
    assert_eq!(tenant_label(&sim, "k8s").as_deref(), Some(label.as_str()), "the label stays");

    // Nothing changed: nothing sent. The drift check agrees with what was sent per application.
    let posts = sim.state().declare_count();
    syncer.sync("k8s", &apps).await;
    assert_eq!(sim.state().declare_count(), posts);
    assert!(syncer.detect_drift().await.expect("read back").is_empty(), "the digest follows per-application changes");

    // The last applications go: the tenant is removed by a whole-tenant declaration.
    let seq = sim.state().change_count();
    let outcome = syncer.sync("k8s", &[]).await;
    assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{outcome:?}");
    assert_eq!(actions_after(&sim, "k8s", seq), [(Deleted, 0)]);
    sim.shutdown().await;
}

/// Without the per-application API (AS3 before 3.50, the setting off, or turned off in the
/// operator) every change is a whole-tenant declaration.
#[tokio::test]
async fn without_the_per_application_api_changes_are_whole_tenant_declarations() {
    use simulator::ChangeAction::Deployed;
    for (config, enabled) in [
        (SimulatorConfig { as3_version: "3.49.0".into(), ..SimulatorConfig::default() }, true),
        (SimulatorConfig { per_application_api: false, ..SimulatorConfig::default() }, true),
        (SimulatorConfig::default(), false),
    ] {
        let why = format!("AS3 {} setting {} operator {enabled}", config.as3_version, config.per_application_api);
        let sim = simulator(config).await;
        let client = Arc::new(client_for(&sim, "admin"));
        let syncer = syncer_for(&client, &sim).per_application_posts(enabled);
        let mut apps = vec![app("a", "10.1.10.80", &[]), app("b", "10.1.10.81", &[])];
        syncer.sync("k8s", &apps).await;
        let seq = sim.state().change_count();
        apps[1] = app("b", "10.1.10.81", &["172.31.0.5"]);
        let outcome = syncer.sync("k8s", &apps).await;
        assert!(matches!(outcome.state, ProgrammingState::Programmed { .. }), "{why}: {outcome:?}");
        assert_eq!(actions_after(&sim, "k8s", seq), [(Deployed, 2)], "{why}");
        sim.shutdown().await;
    }
}
