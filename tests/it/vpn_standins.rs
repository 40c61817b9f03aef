//! The realm's VPN instance on the Azure and Google stand-ins (issue #23), through the binary
//! and each cloud's real client: exactly one instance (forwarding), one static address attached
//! to it, a firewall whose only rules from outside the network are IKE (UDP 500, 4500) and ESP
//! from the /32, one route per customer network through the instance, the key stored once and
//! readable by the instance's identity alone, user data without the key; the install waits on
//! the customer and the approval of exactly what they were asked lets it finish; a re-run and
//! a second state folder create nothing; the one-time reveal; the key in no file or output in
//! any encoding; SIGKILL around every part's intent and build leaves one of each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use realmctl_standins::StandIn;

use crate::cloud_install::install;
use crate::common::{assert_nowhere, realmctl_std};
use crate::engine_support::{ROLES_GATE, approve, playbook, text};

const VPN: &str = "vpn: {enabled: true, peer: 198.51.100.7/32, routing: route-based, remoteCidrs: [192.168.10.0/24, 192.168.20.0/24]}\n";
const REMOTE: [&str; 2] = ["192.168.10.0/24", "192.168.20.0/24"];

fn vpn_playbook(dir: &Path) -> PathBuf {
    playbook(
        dir,
        [
            "steps: [{id: spec, action: spec.validate}, {id: cloud-account, action: cloud.account}, {id: vpn, action: vpn.prerequisites}]",
            "steps: [{id: credentials, action: cloud.credentials}]",
            "steps: [{id: permissions, action: cloud.permissions}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            "steps: [{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}, {id: vpn-instance, action: vpn.apply}, {id: vpn-customer, action: vpn.customer}]",
        ],
    )
}

/// A spec written by the cloud's own test helper, with the VPN enabled.
fn with_vpn(spec: PathBuf) -> PathBuf {
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str(VPN);
    std::fs::write(&spec, text).unwrap();
    spec
}

/// One cloud's stand-in as these tests use it.
struct Cloud<'a> {
    standin: &'a StandIn,
    env: Vec<(&'static str, String)>,
    /// The operation that creates the instance, as the stand-in logs it.
    create_instance: &'static str,
    /// How the instance's identity is named among the secret's readers.
    reader: fn(&realmctl_standins::vpn::Role) -> String,
    /// The user data as the instance received it.
    user_data: fn(&str) -> String,
}

/// What the world holds of the VPN, checked against what the definition asks.
fn assert_one_vpn(c: &Cloud<'_>, key_must_be: Option<&str>) -> String {
    let w = c.standin.world();
    let v = &w.vpn;
    assert_eq!(v.hosts.len(), 1, "one instance: {:?}", v.hosts.keys());
    let host = v.hosts.values().next().unwrap();
    assert!(host.forwarding, "the instance forwards");
    assert_eq!(v.addresses.len(), 1, "one address");
    let address = v.addresses.values().next().unwrap();
    assert!(
        address.attached_to.as_deref().is_some_and(
            |a| a.eq_ignore_ascii_case(&host.id) || a.eq_ignore_ascii_case(&host.interface)
        ),
        "the address is the instance's: {address:?}"
    );
    // The firewall's only rules from outside are IKE and ESP from the peer; on Google a second
    // rule of the realm's admits its own ranges (a custom VPC network admits nothing).
    assert!(v.firewalls.len() <= 2, "{:?}", v.firewalls.keys());
    if let Some(internal) = v.firewalls.get("acme-vpn-internal") {
        assert!(!internal.rules.is_empty());
        assert!(
            internal
                .rules
                .iter()
                .all(|r| r.protocol == "all" && r.source.starts_with("10.")),
            "{internal:?}"
        );
        assert_eq!(internal.targets, ["acme-vpn"]);
    }
    let mut rules: Vec<String> = v.firewalls["acme-vpn"]
        .rules
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.protocol,
                r.from.map(|p| p.to_string()).unwrap_or_default(),
                r.source
            )
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "esp  198.51.100.7/32",
            "udp 4500 198.51.100.7/32",
            "udp 500 198.51.100.7/32"
        ],
        "only IKE and ESP from the /32"
    );
    for cidr in REMOTE {
        let to: Vec<_> = v.routes.iter().filter(|r| r.destination == cidr).collect();
        assert_eq!(to.len(), 1, "one route to {cidr}: {:?}", v.routes);
        assert!(
            to[0].target == host.private_ip || to[0].target.ends_with(&format!("/{}", host.name)),
            "{cidr} goes through the instance: {:?}",
            to[0]
        );
    }
    assert_eq!(v.secrets.len(), 1, "the key is stored once");
    let secret = v.secrets.values().next().unwrap();
    let key = secret.value.clone().expect("the secret holds the key");
    assert_eq!(key.len(), 43);
    if let Some(k) = key_must_be {
        assert_eq!(key, k, "the key is never replaced");
    }
    let role = v.roles.values().next().expect("the instance's identity");
    assert_eq!(
        secret.readers,
        [(c.reader)(role)],
        "the instance's identity alone reads the key"
    );
    let ud = (c.user_data)(&host.user_data);
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    assert!(!ud.contains(&key), "no key in the user data");
    assert!(ud.contains("acme-vpn-psk"), "{ud}");
    key
}

fn reveal(c: &Cloud<'_>, spec: &Path, state: &Path) -> std::process::Output {
    let mut cmd = realmctl_std();
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    cmd.args(["vpn", "reveal-key", "--by", "Carl Customer", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap()
}

/// The whole walk on one cloud's stand-in.
fn builds_one_vpn_and_waits_on_the_customer(c: &Cloud<'_>, spec: &Path, dir: &Path) {
    let pb = vpn_playbook(dir);
    let state = dir.join("state");
    let mut printed = Vec::new();
    let (code, out, err) = install(&c.env, spec, &state, &pb);
    assert_eq!(code, 3, "the phase-5 gate: {out}\n{err}");
    printed.push(format!("{out}{err}"));
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, out, err) = install(&c.env, spec, &state, &pb);
    printed.push(format!("{out}{err}"));
    assert_eq!(code, 3, "waits on the customer's side: {out}\n{err}");
    assert!(
        out.contains("vpn-customer") && out.contains("198.51.100.7/32"),
        "{out}"
    );
    let key = assert_one_vpn(c, None);
    let address = c
        .standin
        .world()
        .vpn
        .addresses
        .values()
        .next()
        .unwrap()
        .ip
        .clone();
    assert!(
        out.contains(&address),
        "the customer is told the realm's address: {out}"
    );
    let o = approve(&state, 6);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let (code, out, err) = install(&c.env, spec, &state, &pb);
    printed.push(format!("{out}{err}"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(c.standin.world().count(c.create_instance), 1);
    // Nothing again, from this folder or a fresh one.
    let (code, out, err) = install(&c.env, spec, &state, &pb);
    printed.push(format!("{out}{err}"));
    assert_eq!(code, 0, "{out}\n{err}");
    let state2 = dir.join("state2");
    let (code, out, err) = crate::cloud_install::install_approved(&c.env, spec, &state2, &pb);
    printed.push(format!("{out}{err}"));
    assert_eq!(
        code, 3,
        "a new folder asks the customer again: {out}\n{err}"
    );
    assert_eq!(c.standin.world().count(c.create_instance), 1, "adopted");
    assert_one_vpn(c, Some(&key));
    // The one-time reveal.
    let o = reveal(c, spec, &state);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{key}\n"));
    printed.push(String::from_utf8_lossy(&o.stderr).into_owned());
    let again = reveal(c, spec, &state);
    assert_eq!(again.status.code(), Some(1));
    let (out, err) = text(&again);
    assert!(out.is_empty() && err.contains("already revealed"), "{err}");
    printed.push(format!("{out}{err}"));
    for f in ["md", "html", "json"] {
        printed.push(crate::cloud_install::report_of(&state, f));
    }
    let printed: Vec<&str> = printed.iter().map(String::as_str).collect();
    assert_nowhere(&key, &printed, &[dir]);
}

fn google() -> (crate::gke::Google, Vec<(&'static str, String)>) {
    let g = crate::gke::Google::start(Duration::from_millis(600));
    let env = g.env();
    (g, env)
}

fn google_cloud<'a>(g: &'a crate::gke::Google, env: Vec<(&'static str, String)>) -> Cloud<'a> {
    Cloud {
        standin: &g.standin,
        env,
        create_instance: "compute:InsertInstance",
        reader: |r| format!("serviceAccount:{}", r.id),
        user_data: |ud| ud.to_owned(),
    }
}

fn azure_cloud(a: &crate::aks::Azure) -> Cloud<'_> {
    Cloud {
        standin: &a.standin,
        env: a.env(),
        create_instance: "Microsoft.Compute/virtualMachines/write",
        reader: |r| r.description.clone(),
        user_data: |ud| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(ud)
                    .unwrap(),
            )
            .unwrap()
        },
    }
}

#[test]
fn on_google_one_vpn_is_built_the_customer_confirms_and_nothing_is_built_twice() {
    let (g, env) = google();
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::gke::write_spec(&g, dir.path(), "digibee-acme", ""));
    builds_one_vpn_and_waits_on_the_customer(&google_cloud(&g, env), &spec, dir.path());
    // The realm's ranges (the subnetwork's and its pods' and Services') reach the instance.
    let w = g.standin.world();
    let mut sources: Vec<&str> = w.vpn.firewalls["acme-vpn-internal"]
        .rules
        .iter()
        .map(|r| r.source.as_str())
        .collect();
    sources.sort();
    assert_eq!(sources, ["10.20.0.0/20", "10.64.0.0/14", "10.68.0.0/20"]);
}

#[test]
fn on_azure_one_vpn_is_built_the_customer_confirms_and_nothing_is_built_twice() {
    let a = crate::aks::Azure::start(Duration::from_millis(600));
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::aks::write_spec(&a, dir.path(), "digibee-acme"));
    builds_one_vpn_and_waits_on_the_customer(&azure_cloud(&a), &spec, dir.path());
}

/// SIGKILL on both sides of every part's intent and build inside `vpn.apply`, then resume:
/// one of each, each instance created once.
#[cfg(feature = "test-actions")]
fn sigkill_inside_the_vpn_step_leaves_one_of_each(c: &Cloud<'_>, spec: &Path, dir: &Path) {
    use std::os::unix::process::ExitStatusExt;
    let pb = vpn_playbook(dir);
    let state = dir.join("state");
    let (code, _, _) = install(&c.env, spec, &state, &pb);
    assert_eq!(code, 3);
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    for part in [
        "secret", "identity", "firewall", "address", "instance", "routes",
    ] {
        for side in ["intent", "built"] {
            let point = format!("vpn-instance:at:{side}-vpn-{part}");
            let o = crate::cloud_install::install_cmd(&c.env, spec, &state, &pb)
                .env("REALMCTL_TEST_KILL_AT", &point)
                .output()
                .unwrap();
            if o.status.signal() == Some(9) {
                crate::engine_support::assert_kill_landed(&state, &point);
                crate::cloud_install::unlock(&state);
            } else {
                // Built already by an earlier case: nothing to create, so no kill there.
                assert_eq!(o.status.code(), Some(3), "{point}: {:?}", text(&o));
            }
        }
        let (code, out, err) = install(&c.env, spec, &state, &pb);
        assert_eq!(code, 3, "{part}: {out}\n{err}");
        let w = c.standin.world();
        assert!(w.vpn.hosts.len() <= 1 && w.vpn.addresses.len() <= 1);
    }
    assert_one_vpn(c, None);
    assert_eq!(c.standin.world().count(c.create_instance), 1);
}

#[cfg(feature = "test-actions")]
#[test]
fn on_google_sigkill_inside_the_vpn_step_leaves_one_of_each() {
    let (g, env) = google();
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::gke::write_spec(&g, dir.path(), "digibee-acme", ""));
    sigkill_inside_the_vpn_step_leaves_one_of_each(&google_cloud(&g, env), &spec, dir.path());
}

#[cfg(feature = "test-actions")]
#[test]
fn on_azure_sigkill_inside_the_vpn_step_leaves_one_of_each() {
    let a = crate::aks::Azure::start(Duration::from_millis(600));
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::aks::write_spec(&a, dir.path(), "digibee-acme"));
    sigkill_inside_the_vpn_step_leaves_one_of_each(&azure_cloud(&a), &spec, dir.path());
}

/// `destroy` of a VPN realm on the Google stand-in (issue #20): the routes through the
/// instance, the instance, its address, both firewall rules, its service account and the key's
/// secret are all gone, each deleted once; a second destroy does nothing.
#[test]
fn on_google_destroy_deletes_every_part_of_the_realm_vpn() {
    use crate::destroy_standins::{destroy, destroy_approved};
    let (g, env) = google();
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::gke::write_spec(&g, dir.path(), "digibee-acme", ""));
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install(&env, &spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    assert_eq!(install(&env, &spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 6).status.code(), Some(0));
    let (code, out, err) = install(&env, &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    // The destroy holds destroy's own least-privilege role, nothing more.
    g.world().policy = crate::destroy_standins::destroy_policy(&spec);
    let (code, v, err) = destroy_approved(&env, &spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    let w = g.standin.world();
    let v = &w.vpn;
    assert!(v.secrets.is_empty(), "{:?}", v.secrets.keys());
    assert!(v.roles.is_empty(), "{:?}", v.roles.keys());
    assert!(v.firewalls.is_empty(), "{:?}", v.firewalls.keys());
    assert!(v.addresses.is_empty(), "{:?}", v.addresses.keys());
    assert!(v.hosts.is_empty(), "{:?}", v.hosts.keys());
    assert!(
        !v.routes
            .iter()
            .any(|r| REMOTE.contains(&r.destination.as_str())),
        "{:?}",
        v.routes
    );
    for op in [
        "compute:DeleteInstance",
        "compute:DeleteAddress",
        "iam:DeleteServiceAccount",
        "secretmanager:DeleteSecret",
    ] {
        assert_eq!(w.count(op), 1, "{op}");
    }
    assert_eq!(w.count("compute:DeleteRoute"), REMOTE.len());
    drop(w);
    let (code, v, err) = destroy(&env, &spec, &state, &[]);
    assert_eq!(code, 0, "a second destroy does nothing: {v} {err}");
}

/// `destroy` of a VPN realm on the Azure stand-in (issue #20): the routes through the NIC (and
/// the realm's own route table, taken off its subnet), the VM and its NIC, the public IP, the
/// network security group, the role assignment and the identity, and the vault — purged, so a
/// realm installed again can take its name — are all gone.
#[test]
fn on_azure_destroy_deletes_every_part_of_the_realm_vpn_and_purges_the_vault() {
    use crate::destroy_standins::{destroy, destroy_approved};
    let a = crate::aks::Azure::start(Duration::from_millis(600));
    let env = a.env();
    let dir = tempfile::tempdir().unwrap();
    let spec = with_vpn(crate::aks::write_spec(&a, dir.path(), "digibee-acme"));
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install(&env, &spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    assert_eq!(install(&env, &spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 6).status.code(), Some(0));
    let (code, out, err) = install(&env, &spec, &state, &pb);
    assert_eq!(code, 0, "{out}\n{err}");
    // The destroy holds destroy's own least-privilege role, nothing more.
    a.world().policy = crate::destroy_standins::destroy_policy(&spec);
    let (code, v, err) = destroy_approved(&env, &spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    a.world().policy = realmctl_standins::policy::Policy::allow_all();
    {
        let w = a.standin.world();
        let v = &w.vpn;
        assert!(v.secrets.is_empty(), "{:?}", v.secrets.keys());
        assert!(v.roles.is_empty(), "{:?}", v.roles.keys());
        assert!(v.firewalls.is_empty(), "{:?}", v.firewalls.keys());
        assert!(v.addresses.is_empty(), "{:?}", v.addresses.keys());
        assert!(v.hosts.is_empty(), "{:?}", v.hosts.keys());
        assert!(v.routes.is_empty(), "{:?}", v.routes);
        let left: Vec<&String> = w
            .documents
            .keys()
            .filter(|k| k.starts_with("azure:vpn:") || k.starts_with("azure:deletedvault:"))
            .collect();
        assert!(left.is_empty(), "nothing of the VPN left: {left:?}");
        assert_eq!(
            w.count("Microsoft.KeyVault/locations/deletedVaults/purge/action"),
            1
        );
    }
    let (code, v, err) = destroy(&env, &spec, &state, &[]);
    assert_eq!(code, 0, "a second destroy does nothing: {v} {err}");
    // The realm installs again into a new folder: the vault's name is free.
    let state2 = dir.path().join("state2");
    assert_eq!(install(&env, &spec, &state2, &pb).0, 3);
    assert_eq!(approve(&state2, 5).status.code(), Some(0));
    let (code, out, err) = install(&env, &spec, &state2, &pb);
    assert_eq!(code, 3, "built again, waits on the customer: {out}\n{err}");
}
