//! The cache of Running pods' metadata (namespace, name, labels, creation time), fed by a
//! metadata-only watch with `status.phase=Running`, as metrics-server's pod informer. Lists
//! and gets of PodMetrics are driven by it: a pod not in it does not exist for the API.

use super::intern::Interner;
use k8s_openapi::api::core::v1::Pod;
use kube::core::PartialObjectMeta;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Interned `(key, value)` label pairs, sorted by key.
pub type Labels = Arc<[(Arc<str>, Arc<str>)]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMeta {
    pub labels: Labels,
    /// `metadata.creationTimestamp`, Unix seconds.
    pub created: i64,
}

/// `(namespace, name)`, interned.
type PodKey = (Arc<str>, Arc<str>);

/// namespace -> name -> metadata; lookups by `&str` allocate nothing.
type Index = BTreeMap<Arc<str>, BTreeMap<Arc<str>, PodMeta>>;

/// Deletes between two sweeps of label sets no pod uses any more.
const LABEL_SETS_SWEEP_EVERY: usize = 10_000;

#[derive(Debug, Default)]
pub struct PodCache {
    pods: Index,
    interner: Interner,
    /// Whole label sets, shared: the pods of one ReplicaSet carry identical labels.
    label_sets: std::collections::HashSet<Labels>,
    deletes_since_sweep: usize,
    /// Objects received during a relist, swapped in at its end.
    relist: Option<Index>,
    pub synced: bool,
}

fn insert(index: &mut Index, (ns, name): PodKey, meta: PodMeta) {
    index.entry(ns).or_default().insert(name, meta);
}

impl PodCache {
    pub fn get(&self, namespace: &str, name: &str) -> Option<(&Arc<str>, &Arc<str>, &PodMeta)> {
        let (ns, pods) = self.pods.get_key_value(namespace)?;
        let (name, meta) = pods.get_key_value(name)?;
        Some((ns, name, meta))
    }

    /// Pods of one namespace, or all, in (namespace, name) order.
    pub fn iter_namespace<'a>(
        &'a self,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Arc<str>, &'a Arc<str>, &'a PodMeta)> + 'a {
        self.pods
            .iter()
            .filter(move |(ns, _)| namespace.is_none_or(|want| &***ns == want))
            .flat_map(|(ns, pods)| pods.iter().map(move |(name, meta)| (ns, name, meta)))
    }

    pub fn len(&self) -> usize {
        self.pods.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.values().all(BTreeMap::is_empty)
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(pods) = self.pods.get_mut(namespace) {
            pods.remove(name);
            if pods.is_empty() {
                self.pods.remove(namespace);
            }
        }
    }

    fn entry(&mut self, meta: &kube::core::ObjectMeta) -> Option<(PodKey, PodMeta)> {
        let key = (
            self.interner.intern(meta.namespace.as_deref()?),
            self.interner.intern(meta.name.as_deref()?),
        );
        let mut labels: Vec<(Arc<str>, Arc<str>)> = meta
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (self.interner.intern(k), self.interner.intern(v)))
            .collect();
        labels.sort();
        let labels = match self.label_sets.get(&labels[..]) {
            Some(shared) => shared.clone(),
            None => {
                let new: Labels = labels.into();
                self.label_sets.insert(new.clone());
                new
            }
        };
        let created = meta.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second());
        Some((key, PodMeta { labels, created }))
    }

    /// Forgets interned strings and label sets no pod uses any more.
    fn sweep(&mut self) {
        self.label_sets.retain(|set| Arc::strong_count(set) > 1);
        self.interner.collect_garbage();
        self.deletes_since_sweep = 0;
    }

    /// Applies one watch event.
    pub fn apply(&mut self, event: kube::runtime::watcher::Event<PartialObjectMeta<Pod>>) {
        use kube::runtime::watcher::Event;
        match event {
            Event::Init => self.relist = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                if let Some((k, v)) = self.entry(&obj.metadata) {
                    insert(self.relist.get_or_insert_with(BTreeMap::new), k, v);
                }
            }
            Event::InitDone => {
                self.pods = self.relist.take().unwrap_or_default();
                self.synced = true;
                self.sweep();
            }
            Event::Apply(obj) => {
                if let Some((k, v)) = self.entry(&obj.metadata) {
                    insert(&mut self.pods, k, v);
                }
            }
            Event::Delete(obj) => {
                if let (Some(ns), Some(name)) = (obj.metadata.namespace.as_deref(), obj.metadata.name.as_deref()) {
                    self.remove(ns, name);
                }
                self.deletes_since_sweep += 1;
                if self.deletes_since_sweep >= LABEL_SETS_SWEEP_EVERY {
                    self.sweep();
                }
            }
        }
    }
}

impl apimachinery::selector::Labels for PodMeta {
    fn get(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }
}
