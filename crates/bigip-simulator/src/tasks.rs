//! Records of asynchronous declarations (`?async=true`), served by `/mgmt/shared/appsvcs/task`.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

/// AS3 keeps at most this many task records.
const MAX_TASKS: usize = 25;

enum TaskRecord {
    InProgress,
    Done { results: Vec<Value>, declaration: Value },
}

#[derive(Default)]
pub(super) struct TaskStore {
    order: VecDeque<String>,
    tasks: HashMap<String, TaskRecord>,
}

pub(super) fn self_link(id: &str) -> String {
    format!("https://localhost/mgmt/shared/appsvcs/task/{id}")
}

/// A placeholder result as AS3 shows it for work not finished (`code` 0).
pub(super) fn pending_result(message: &str) -> Value {
    json!({"message": message, "tenant": "", "host": "", "runTime": 0, "code": 0})
}

impl TaskStore {
    /// Records a new task in progress and returns its id.
    pub(super) fn start(&mut self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.order.push_back(id.clone());
        self.tasks.insert(id.clone(), TaskRecord::InProgress);
        self.evict();
        id
    }

    pub(super) fn finish(&mut self, id: &str, results: Vec<Value>, declaration: Value) {
        if let Some(record) = self.tasks.get_mut(id) {
            *record = TaskRecord::Done { results, declaration };
        }
    }

    /// Drops the record of `id`, as if it had been evicted.
    pub(super) fn forget(&mut self, id: &str) {
        self.tasks.remove(id);
        self.order.retain(|kept| kept != id);
    }

    /// Drops the oldest finished records beyond the limit; running tasks are kept.
    fn evict(&mut self) {
        while self.tasks.len() > MAX_TASKS {
            let Some(position) =
                self.order.iter().position(|id| matches!(self.tasks.get(id), Some(TaskRecord::Done { .. })))
            else {
                return;
            };
            if let Some(id) = self.order.remove(position) {
                self.tasks.remove(&id);
            }
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<Value> {
        self.tasks.get(id).map(|record| describe(id, record))
    }

    pub(super) fn list(&self) -> Value {
        let items: Vec<Value> =
            self.order.iter().filter_map(|id| self.tasks.get(id).map(|record| describe(id, record))).collect();
        json!({"items": items})
    }
}

fn describe(id: &str, record: &TaskRecord) -> Value {
    match record {
        TaskRecord::InProgress => json!({
            "id": id,
            "results": [pending_result("in progress")],
            "declaration": {},
            "selfLink": self_link(id),
        }),
        TaskRecord::Done { results, declaration } => json!({
            "id": id,
            "results": results,
            "declaration": declaration,
            "selfLink": self_link(id),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_and_eviction() {
        let mut store = TaskStore::default();
        let first = store.start();
        assert_eq!(store.get(&first).expect("recorded")["results"][0]["message"], "in progress");
        store.finish(&first, vec![json!({"code": 200})], json!({}));
        assert_eq!(store.get(&first).expect("recorded")["results"][0]["code"], 200);
        for _ in 0..MAX_TASKS {
            let id = store.start();
            store.finish(&id, Vec::new(), json!({}));
        }
        assert!(store.get(&first).is_none(), "the oldest finished task is evicted");
        assert_eq!(store.list()["items"].as_array().map(Vec::len), Some(MAX_TASKS));
    }
}
