//! The objects of the stand-in cluster and what the API server does to them: create, read,
//! list, replace, merge-patch, server-side apply (field managers, conflicts, `force`), the
//! status subresource, generation and resourceVersion, deletion with finalizers, and namespace
//! termination. The conventions followed are in `docs/kube-standin.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::fields::{self, Path};
use super::types::{self, ResourceType};

/// The address every Ingress gets (where the stand-in's edge listens: `edge.rs`).
pub const INGRESS_ADDRESS: &str = "127.0.0.1";

/// An API error, answered as a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub code: u16,
    /// `reason` (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, …).
    pub reason: &'static str,
    /// Message.
    pub message: String,
    /// `details.causes`.
    pub causes: Vec<Value>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// The `Status` body.
    pub fn status(&self, name: Option<&str>, t: Option<&ResourceType>) -> Value {
        let mut details = json!({});
        if let Some(n) = name {
            details["name"] = json!(n);
        }
        if let Some(t) = t {
            details["group"] = json!(t.group);
            details["kind"] = json!(t.plural);
        }
        if !self.causes.is_empty() {
            details["causes"] = json!(self.causes);
        }
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "details": details, "code": self.code})
    }
}

fn not_found(t: &ResourceType, name: &str) -> ApiError {
    let what = if t.group.is_empty() {
        t.plural.clone()
    } else {
        format!("{}.{}", t.plural, t.group)
    };
    ApiError::new(404, "NotFound", format!("{what} \"{name}\" not found"))
}

/// One field manager's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    /// Its name (`fieldManager`).
    pub name: String,
    /// `Apply` or `Update`.
    pub operation: &'static str,
    /// The apiVersion it wrote with.
    pub api_version: String,
    /// When (RFC 3339).
    pub time: String,
    /// The fields it owns.
    pub fields: BTreeSet<Path>,
}

/// A stored object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object (without `managedFields`, rendered on the way out).
    pub value: Value,
    /// Its managers.
    pub managers: Vec<Manager>,
    /// When its spec last changed (controllers act `delay` after it).
    pub changed: Instant,
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Group.
    pub group: String,
    /// Plural.
    pub plural: String,
    /// Namespace (empty: cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// How long the simulated controllers take.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// A Deployment or StatefulSet rollout.
    pub rollout: Duration,
    /// A CRD becoming Established.
    pub crd: Duration,
    /// A LoadBalancer Service getting an address.
    pub load_balancer: Duration,
    /// A Job completing.
    pub job: Duration,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            rollout: Duration::from_millis(300),
            crd: Duration::from_millis(100),
            load_balancer: Duration::from_millis(200),
            job: Duration::from_millis(200),
        }
    }
}

/// Who writes, and when (`fieldManager`, the request's instant).
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// When.
    pub now: Instant,
}

/// The cluster.
#[derive(Debug)]
pub struct Cluster {
    objects: BTreeMap<Key, Stored>,
    rv: u64,
    uid: u64,
    /// Controller delays.
    pub delays: Delays,
    /// Workloads (`namespace/name`) that never become available (their pods never start).
    pub never_ready: BTreeSet<String>,
    /// Deprecated types served besides the built-in ones, with the release that removes each.
    pub deprecated: Vec<(ResourceType, String)>,
    /// The deprecated types a request has used (`group`, `version`, `plural`): what the
    /// `apiserver_requested_deprecated_apis` gauge reports.
    pub requested_deprecated: BTreeSet<(String, String, String)>,
}

impl Default for Cluster {
    fn default() -> Self {
        let mut c = Cluster {
            objects: BTreeMap::new(),
            rv: 100,
            uid: 0,
            delays: Delays::default(),
            never_ready: BTreeSet::new(),
            deprecated: Vec::new(),
            requested_deprecated: BTreeSet::new(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let t = c.find("", "namespaces").expect("built in");
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            c.create(&t, "", body, "kube-apiserver", Instant::now())
                .expect("a new cluster");
        }
        c
    }
}

/// RFC 3339 (UTC, seconds) of now.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::world::rfc3339(secs)
}

/// Whether writes to `t` keep a generation (objects with a spec the controllers act on).
fn has_generation(t: &ResourceType) -> bool {
    t.status
}

/// The object without what writes to the main resource never change (status, server metadata).
fn spec_of(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl Cluster {
    /// Every type it serves now: the built-ins and those of Established CRDs.
    pub fn types(&self) -> Vec<ResourceType> {
        let mut out = types::builtins();
        out.extend(self.deprecated.iter().map(|(t, _)| t.clone()));
        for (k, o) in &self.objects {
            if k.plural == "customresourcedefinitions" && established(&o.value) {
                out.extend(types::from_crd(&o.value));
            }
        }
        out
    }

    /// The type of `group`'s `plural`, if served.
    pub fn find(&self, group: &str, plural: &str) -> Option<ResourceType> {
        self.types()
            .into_iter()
            .find(|t| t.group == group && t.plural == plural)
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn key(t: &ResourceType, ns: &str, name: &str) -> Key {
        Key {
            group: t.group.clone(),
            plural: t.plural.clone(),
            namespace: if t.namespaced {
                ns.into()
            } else {
                String::new()
            },
            name: name.into(),
        }
    }

    /// The object as the API answers it (with `managedFields`).
    fn render(o: &Stored) -> Value {
        let mut v = o.value.clone();
        let managed: Vec<Value> = o
            .managers
            .iter()
            .filter(|m| !m.fields.is_empty())
            .map(|m| {
                json!({"manager": m.name, "operation": m.operation, "apiVersion": m.api_version,
                   "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": fields::to_fields_v1(&m.fields)})
            })
            .collect();
        v["metadata"]["managedFields"] = json!(managed);
        v
    }

    fn namespace_ready(&self, t: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if !t.namespaced {
            return Ok(());
        }
        let key = Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.into(),
        };
        match self.objects.get(&key) {
            None => Err(ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            )),
            Some(o) if o.value["metadata"]["deletionTimestamp"].is_string() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    t.plural,
                    o.value["metadata"]["name"].as_str().unwrap_or("")
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks the body names this type.
    fn check_type(t: &ResourceType, body: &Value) -> Result<(), ApiError> {
        let (av, kind) = (body["apiVersion"].as_str(), body["kind"].as_str());
        if av != Some(t.api_version().as_str()) || kind != Some(t.kind.as_str()) {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "the body of the request was in an unknown format: expected {} {}, got {} {}",
                    t.api_version(),
                    t.kind,
                    av.unwrap_or("(none)"),
                    kind.unwrap_or("(none)")
                ),
            ));
        }
        Ok(())
    }

    /// The key and current value of an object that must exist.
    fn current(&self, t: &ResourceType, ns: &str, name: &str) -> Result<(Key, Value), ApiError> {
        let key = Self::key(t, ns, name);
        let value = self
            .objects
            .get(&key)
            .ok_or_else(|| not_found(t, name))?
            .value
            .clone();
        Ok((key, value))
    }

    /// GET one object.
    pub fn get(&mut self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(t, ns, name))
            .map(Self::render)
            .ok_or_else(|| not_found(t, name))
    }

    /// GET a collection (`ns` `None`: every namespace), filtered by `metadata.name=` /
    /// `metadata.namespace=` field selectors and `k=v` label selectors.
    pub fn list(
        &self,
        t: &ResourceType,
        ns: Option<&str>,
        field_selector: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut fsel = Vec::new();
        for term in field_selector.into_iter().flat_map(|s| s.split(',')) {
            match term.split_once('=') {
                Some((k @ ("metadata.name" | "metadata.namespace"), v)) => {
                    fsel.push((k, v.trim_start_matches('=')))
                }
                _ => {
                    return Err(ApiError::new(
                        400,
                        "BadRequest",
                        format!("field label not supported: {term}"),
                    ));
                }
            }
        }
        let mut lsel = Vec::new();
        for term in label_selector
            .into_iter()
            .flat_map(|s| s.split(','))
            .filter(|t| !t.is_empty())
        {
            match term.split_once('=') {
                Some((k, v)) => lsel.push((k, v.trim_start_matches('='))),
                None => lsel.push((term, "")),
            }
        }
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == t.group && k.plural == t.plural)
            .filter(|(k, _)| ns.is_none_or(|ns| !t.namespaced || k.namespace == ns))
            .filter(|(_, o)| {
                fsel.iter().all(|(k, v)| {
                    let field = k.trim_start_matches("metadata.");
                    o.value["metadata"][field].as_str().unwrap_or("") == *v
                })
            })
            .filter(|(_, o)| {
                lsel.iter()
                    .all(|(k, v)| match o.value["metadata"]["labels"][*k].as_str() {
                        Some(have) => v.is_empty() || have == *v,
                        None => false,
                    })
            })
            .map(|(_, o)| Self::render(o))
            .collect();
        Ok(
            json!({"apiVersion": t.api_version(), "kind": format!("{}List", t.kind),
                  "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
        )
    }

    /// POST: creates `body` as `manager`.
    pub fn create(
        &mut self,
        t: &ResourceType,
        ns: &str,
        mut body: Value,
        manager: &str,
        now: Instant,
    ) -> Result<Value, ApiError> {
        Self::check_type(t, &body)?;
        let Some(name) = body["metadata"]["name"].as_str().map(str::to_owned) else {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("{} \"\" is invalid: metadata.name: Required value", t.kind),
            ));
        };
        if t.namespaced {
            let given = body["metadata"]["namespace"].as_str().unwrap_or(ns);
            if given != ns {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        self.namespace_ready(t, ns)?;
        let key = Self::key(t, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.plural),
            ));
        }
        if t.status
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        let owned = fields::leaves(&body);
        self.uid += 1;
        let rv = self.next_rv();
        let meta = &mut body["metadata"];
        if t.namespaced {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", self.uid));
        meta["resourceVersion"] = json!(rv);
        meta["creationTimestamp"] = json!(now_rfc3339());
        if has_generation(t) {
            meta["generation"] = json!(1);
        }
        if t.kind == "Namespace" {
            body["spec"]["finalizers"] = json!(["kubernetes"]);
            body["status"] = json!({"phase": "Active"});
        }
        let stored = Stored {
            value: body,
            managers: vec![Manager {
                name: manager.into(),
                operation: "Update",
                api_version: t.api_version(),
                time: now_rfc3339(),
                fields: owned,
            }],
            changed: now,
        };
        let out = Self::render(&stored);
        self.objects.insert(key, stored);
        Ok(out)
    }

    /// Stores `next` as the new value of `key` (bumping resourceVersion and, when the spec
    /// changed, generation), with `manager` owning `took` (taken from everyone else) and, for an
    /// apply, exactly `applied`.
    fn commit(
        &mut self,
        t: &ResourceType,
        key: &Key,
        mut next: Value,
        (by, op): (By<'_>, &'static str),
        took: &BTreeSet<Path>,
        applied: Option<BTreeSet<Path>>,
    ) -> Value {
        let (manager, now) = ((by.manager, op), by.now);
        let o = self.objects.get(key).expect("checked by the caller");
        let mut managers = o.managers.clone();
        for m in &mut managers {
            if m.name != manager.0 || m.operation != manager.1 {
                m.fields.retain(|p| !took.contains(p));
            }
        }
        let time = now_rfc3339();
        match managers
            .iter_mut()
            .find(|m| m.name == manager.0 && m.operation == manager.1)
        {
            Some(m) => {
                match applied {
                    Some(a) => m.fields = a,
                    None => m.fields.extend(took.iter().cloned()),
                }
                m.time = time;
            }
            None => managers.push(Manager {
                name: manager.0.into(),
                operation: manager.1,
                api_version: t.api_version(),
                time,
                fields: applied.unwrap_or_else(|| took.clone()),
            }),
        }
        managers.retain(|m| !m.fields.is_empty());
        let same_fields = |a: &[Manager], b: &[Manager]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.name == y.name && x.operation == y.operation && x.fields == y.fields
                })
        };
        if next == o.value && same_fields(&managers, &o.managers) {
            return Self::render(o);
        }
        let spec_changed = spec_of(&next) != spec_of(&o.value);
        let generation = o.value["metadata"]["generation"].as_i64().unwrap_or(1);
        let rv = self.next_rv();
        let o = self.objects.get_mut(key).expect("checked by the caller");
        next["metadata"]["resourceVersion"] = json!(rv);
        if has_generation(t) && spec_changed {
            next["metadata"]["generation"] = json!(generation + 1);
            o.changed = now;
        }
        o.managers = managers;
        o.value = next;
        Self::render(o)
    }

    /// Keeps what a write to the main resource (or to `status`) may not change.
    fn keep_server_parts(t: &ResourceType, old: &Value, next: &mut Value, status_write: bool) {
        if status_write {
            let status = next["status"].take();
            *next = old.clone();
            next["status"] = status;
            return;
        }
        for k in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
            "namespace",
            "name",
        ] {
            match old["metadata"].get(k) {
                Some(v) => next["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = next["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        if let Some(m) = next["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        if t.status {
            match old.get("status") {
                Some(s) => next["status"] = s.clone(),
                None => {
                    if let Some(m) = next.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if t.kind == "Namespace" {
            next["spec"] = old["spec"].clone();
        }
    }

    /// PUT (`status_write`: to the status subresource): replaces the object as `manager`,
    /// refusing a stale `resourceVersion`.
    pub fn replace(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        by: By<'_>,
        status_write: bool,
    ) -> Result<Value, ApiError> {
        Self::check_type(t, &body)?;
        let (key, old) = self.current(t, ns, name)?;
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    t.plural
                ),
            ));
        }
        Ok(self.update(t, &key, &old, body, by, status_write))
    }

    /// An update (PUT or merge patch) of `key` from `old` to `next` by `by`: the server's parts
    /// kept, the changed fields owned by `by`, a deletion finished once no finalizer remains.
    fn update(
        &mut self,
        t: &ResourceType,
        key: &Key,
        old: &Value,
        mut next: Value,
        by: By<'_>,
        status_write: bool,
    ) -> Value {
        Self::keep_server_parts(t, old, &mut next, status_write);
        let took = changed_leaves(old, &next);
        let out = self.commit(t, key, next, (by, "Update"), &took, None);
        self.finish_deletion(key);
        out
    }

    /// PATCH with a JSON merge patch (RFC 7386) as `manager`.
    pub fn merge_patch(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        patch: &Value,
        by: By<'_>,
        status_write: bool,
    ) -> Result<Value, ApiError> {
        let (key, old) = self.current(t, ns, name)?;
        let mut next = old.clone();
        merge_patch(&mut next, patch);
        Ok(self.update(t, &key, &old, next, by, status_write))
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply of `config` by `manager`.
    /// Returns the object and whether it was created.
    pub fn apply(
        &mut self,
        t: &ResourceType,
        ns: &str,
        name: &str,
        config: Value,
        by: By<'_>,
        force: bool,
    ) -> Result<(Value, bool), ApiError> {
        let (manager, now) = (by.manager, by.now);
        Self::check_type(t, &config)?;
        if config["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
            ));
        }
        let key = Self::key(t, ns, name);
        let Some(current) = self.objects.get(&key) else {
            self.create(t, ns, config, manager, now)?;
            let o = self.objects.get_mut(&key).expect("just created");
            for m in &mut o.managers {
                m.operation = "Apply";
            }
            return Ok((Self::render(o), true));
        };
        let mut config = config;
        if t.status
            && let Some(m) = config.as_object_mut()
        {
            m.remove("status");
        }
        let applied = fields::leaves(&config);
        let old = current.value.clone();
        // Conflicts: a field another manager owns whose value this apply would change.
        let mut conflicts: Vec<(String, Path)> = Vec::new();
        for m in &current.managers {
            if m.name == manager && m.operation == "Apply" {
                continue;
            }
            let mine: BTreeSet<Path> = m.fields.intersection(&applied).cloned().collect();
            for p in fields::differing(&mine, &old, &config) {
                conflicts.push((m.name.clone(), p));
            }
        }
        if !conflicts.is_empty() && !force {
            let n = conflicts.len();
            let mut e = ApiError::new(
                409,
                "Conflict",
                format!(
                    "Apply failed with {n} conflict{}: {}",
                    if n == 1 { "" } else { "s" },
                    conflicts
                        .iter()
                        .map(|(m, p)| format!("conflict with \"{m}\": {}", fields::dotted(p)))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            );
            e.causes = conflicts
                .iter()
                .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": fields::dotted(p)}))
                .collect();
            return Err(e);
        }
        // Fields this manager applied before and no longer does: removed unless another owns them.
        let before: BTreeSet<Path> = current
            .managers
            .iter()
            .filter(|m| m.name == manager && m.operation == "Apply")
            .flat_map(|m| m.fields.iter().cloned())
            .collect();
        let others: BTreeSet<Path> = current
            .managers
            .iter()
            .filter(|m| !(m.name == manager && m.operation == "Apply"))
            .flat_map(|m| m.fields.iter().cloned())
            .collect();
        let mut next = old.clone();
        for p in before.difference(&applied) {
            if !others.contains(p) {
                fields::remove(&mut next, p);
            }
        }
        fields::merge(&mut next, &config, &applied);
        Self::keep_server_parts(t, &old, &mut next, false);
        // Forced: the conflicting fields move to this manager; shared fields stay shared.
        let took: BTreeSet<Path> = conflicts.into_iter().map(|(_, p)| p).collect();
        let out = self.commit(t, &key, next, (by, "Apply"), &took, Some(applied));
        Ok((out, false))
    }

    /// DELETE: removes the object, or marks it for deletion while finalizers remain (a
    /// namespace terminates: its objects go first).
    pub fn delete(&mut self, t: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = Self::key(t, ns, name);
        let rv = self.next_rv();
        let o = self
            .objects
            .get_mut(&key)
            .ok_or_else(|| not_found(t, name))?;
        let finalizers = o.value["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
            || t.kind == "Namespace";
        if finalizers {
            if !o.value["metadata"]["deletionTimestamp"].is_string() {
                o.value["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                o.value["metadata"]["resourceVersion"] = json!(rv);
                if t.kind == "Namespace" {
                    o.value["status"]["phase"] = json!("Terminating");
                }
            }
            return Ok(Self::render(o));
        }
        let o = self.objects.remove(&key).expect("present");
        Ok(Self::render(&o))
    }

    /// Removes `key` if it is being deleted and no finalizer remains.
    fn finish_deletion(&mut self, key: &Key) {
        let done = self.objects.get(key).is_some_and(|o| {
            o.value["metadata"]["deletionTimestamp"].is_string()
                && o.value["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty())
                && key.plural != "namespaces"
        });
        if done {
            self.objects.remove(key);
        }
    }

    /// Runs the simulated controllers up to `now`: rollouts, CRDs, load balancers, Jobs,
    /// namespace termination.
    pub fn reconcile(&mut self, now: Instant) {
        let keys: Vec<Key> = self.objects.keys().cloned().collect();
        for key in keys {
            let Some(o) = self.objects.get(&key) else {
                continue;
            };
            let ready_at = |d: Duration| now >= o.changed + d;
            let id = format!("{}/{}", key.namespace, key.name);
            let status = match (key.group.as_str(), key.plural.as_str()) {
                ("apps", "deployments" | "statefulsets") if ready_at(self.delays.rollout) => {
                    rollout(
                        &o.value,
                        key.plural == "statefulsets",
                        self.never_ready.contains(&id),
                    )
                }
                ("apiextensions.k8s.io", "customresourcedefinitions")
                    if ready_at(self.delays.crd) =>
                {
                    let names = o.value["spec"]["names"].clone();
                    Some(json!({"acceptedNames": names, "conditions": [
                        condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                        condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted")]}))
                }
                ("", "services")
                    if o.value["spec"]["type"] == "LoadBalancer"
                        && ready_at(self.delays.load_balancer) =>
                {
                    Some(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}))
                }
                ("networking.k8s.io", "ingresses") if ready_at(self.delays.load_balancer) => {
                    Some(json!({"loadBalancer": {"ingress": [{"ip": INGRESS_ADDRESS}]}}))
                }
                // Bound once a consumer's pod would be scheduled (WaitForFirstConsumer).
                ("", "persistentvolumeclaims") if ready_at(self.delays.rollout) => Some(json!({
                    "phase": "Bound", "accessModes": o.value["spec"]["accessModes"],
                    "capacity": {"storage": o.value["spec"]["resources"]["requests"]["storage"]}})),
                ("batch", "jobs") if ready_at(self.delays.job) => Some(json!({
                    "succeeded": 1, "completionTime": now_rfc3339(),
                    "conditions": [condition("Complete", "True", "", "")]})),
                _ => None,
            };
            if let Some(status) = status
                && o.value.get("status") != Some(&status)
            {
                let rv = self.next_rv();
                let o = self.objects.get_mut(&key).expect("present");
                o.value["status"] = status;
                o.value["metadata"]["resourceVersion"] = json!(rv);
            }
        }
        self.terminate_namespaces();
    }

    fn terminate_namespaces(&mut self) {
        let terminating: Vec<String> = self
            .objects
            .iter()
            .filter(|(k, o)| {
                k.plural == "namespaces" && o.value["metadata"]["deletionTimestamp"].is_string()
            })
            .map(|(k, _)| k.name.clone())
            .collect();
        for ns in terminating {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.namespace == ns)
                .cloned()
                .collect();
            for k in &inside {
                let o = self.objects.get_mut(k).expect("listed");
                if o.value["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
                {
                    if !o.value["metadata"]["deletionTimestamp"].is_string() {
                        o.value["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                    }
                } else {
                    self.objects.remove(k);
                }
            }
            if !self.objects.keys().any(|k| k.namespace == ns) {
                self.objects
                    .retain(|k, _| !(k.plural == "namespaces" && k.name == ns));
            }
        }
    }

    /// Every object's key, for tests and the demo.
    pub fn keys(&self) -> Vec<Key> {
        self.objects.keys().cloned().collect()
    }
}

fn established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let t = now_rfc3339();
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": t, "lastUpdateTime": t})
}

/// The status a rollout ends with: available, or (a workload whose pods never start) stalled
/// past its progress deadline.
fn rollout(v: &Value, stateful: bool, never: bool) -> Option<Value> {
    let generation = v["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let name = v["metadata"]["name"].as_str().unwrap_or("");
    let ready = if never { 0 } else { replicas };
    let mut s = json!({"observedGeneration": generation, "replicas": replicas,
        "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready});
    if never {
        s["unavailableReplicas"] = json!(replicas);
    }
    if stateful {
        s["currentReplicas"] = json!(replicas);
        s["currentRevision"] = json!(format!("{name}-{generation}"));
        s["updateRevision"] = json!(format!("{name}-{generation}"));
    } else if never {
        s["conditions"] = json!([
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability."
            ),
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{name}-{generation}\" has timed out progressing.")
            )
        ]);
    } else {
        s["conditions"] = json!([
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability."
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{name}-{generation}\" has successfully progressed.")
            )
        ]);
    }
    Some(s)
}

/// The leaf fields whose values differ between `old` and `new` (either side's leaves).
fn changed_leaves(old: &Value, new: &Value) -> BTreeSet<Path> {
    let mut all = fields::leaves(old);
    all.extend(fields::leaves(new));
    all.retain(|p| p.first().map(String::as_str) != Some("status"));
    fields::differing(&all, old, new).into_iter().collect()
}

/// RFC 7386.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    fn me(now: Instant) -> By<'static> {
        By { manager: "me", now }
    }

    fn cluster() -> (Cluster, ResourceType) {
        let c = Cluster::default();
        let t = c.find("", "configmaps").unwrap();
        (c, t)
    }

    #[test]
    fn apply_creates_then_a_noop_keeps_the_resource_version() {
        let (mut c, t) = cluster();
        let now = Instant::now();
        let (v, created) = c
            .apply(&t, "default", "c", cm(json!({"a": "1"})), me(now), false)
            .unwrap();
        assert!(created);
        assert_eq!(v["metadata"]["managedFields"][0]["operation"], "Apply");
        let rv = v["metadata"]["resourceVersion"].clone();
        let (v, created) = c
            .apply(&t, "default", "c", cm(json!({"a": "1"})), me(now), false)
            .unwrap();
        assert!(!created);
        assert_eq!(v["metadata"]["resourceVersion"], rv);
    }

    #[test]
    fn another_managers_field_conflicts_unless_forced_and_dropped_fields_are_removed() {
        let (mut c, t) = cluster();
        let now = Instant::now();
        c.apply(
            &t,
            "default",
            "c",
            cm(json!({"a": "1", "b": "1"})),
            me(now),
            false,
        )
        .unwrap();
        c.merge_patch(
            &t,
            "default",
            "c",
            &json!({"data": {"a": "2"}}),
            By {
                manager: "kubectl-edit",
                now,
            },
            false,
        )
        .unwrap();
        let e = c
            .apply(
                &t,
                "default",
                "c",
                cm(json!({"a": "1", "b": "1"})),
                me(now),
                false,
            )
            .unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(e.causes[0]["field"], ".data.a");
        assert!(
            e.message.contains("conflict with \"kubectl-edit\""),
            "{}",
            e.message
        );
        // Same value as the other manager: shared, no conflict; b dropped: removed.
        let (v, _) = c
            .apply(&t, "default", "c", cm(json!({"a": "2"})), me(now), false)
            .unwrap();
        assert_eq!(v["data"], json!({"a": "2"}));
        // Forced: ownership moves.
        let (v, _) = c
            .apply(&t, "default", "c", cm(json!({"a": "3"})), me(now), true)
            .unwrap();
        assert_eq!(v["data"]["a"], "3");
        let managers: Vec<&str> = v["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["me"]);
    }

    #[test]
    fn generation_moves_with_the_spec_and_rollouts_finish_after_their_delay() {
        let mut c = Cluster::default();
        let t = c.find("apps", "deployments").unwrap();
        let d = |r: i64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": r}})
        };
        let t0 = Instant::now();
        c.apply(&t, "default", "d", d(1), me(t0), false).unwrap();
        c.reconcile(t0);
        assert!(c.get(&t, "default", "d").unwrap()["status"].is_null());
        c.reconcile(t0 + Duration::from_secs(1));
        let v = c.get(&t, "default", "d").unwrap();
        assert_eq!(v["status"]["observedGeneration"], 1);
        let (v, _) = c.apply(&t, "default", "d", d(2), me(t0), false).unwrap();
        assert_eq!(v["metadata"]["generation"], 2);
        assert_eq!(
            v["status"]["observedGeneration"], 1,
            "status kept by a spec write"
        );
    }

    #[test]
    fn finalizers_hold_a_deletion_until_removed() {
        let (mut c, t) = cluster();
        let now = Instant::now();
        let mut body = cm(json!({}));
        body["metadata"]["finalizers"] = json!(["x.io/hold"]);
        c.create(&t, "default", body, "me", now).unwrap();
        let v = c.delete(&t, "default", "c").unwrap();
        assert!(v["metadata"]["deletionTimestamp"].is_string());
        assert!(c.get(&t, "default", "c").is_ok());
        c.merge_patch(
            &t,
            "default",
            "c",
            &json!({"metadata": {"finalizers": null}}),
            me(now),
            false,
        )
        .unwrap();
        assert_eq!(c.get(&t, "default", "c").unwrap_err().code, 404);
    }
}
