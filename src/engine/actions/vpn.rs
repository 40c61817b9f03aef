//! The realm's VPN instance in phase 6 (issue #23):
//!
//! - `vpn.apply` builds the VPN part of the approved cluster definition — only one an
//!   approval named by its digest — part by part ([`VpnPart::ORDER`]): each is described,
//!   judged ([`crate::cloud::vpn::judge`]), and created or finished with an intent journaled
//!   first, so a crash anywhere is followed by a describe, never a second create; a resource
//!   this realm did not create, or one that differs from the definition, is a conflict and is
//!   never changed. The pre-shared key is generated for the secret's create only and goes
//!   nowhere but the cloud's secret store;
//! - `vpn.customer` describes the instance's address and waits on the customer with exactly
//!   what to configure on their side ([`CustomerPart`]); the approval that lets it pass must
//!   cover the digest of those instructions, so a new address needs a new confirmation.
//!
//! A realm without a VPN skips both.

use std::time::Duration;

use serde_json::json;

use super::cloud::{approved_definition, conflict, until_active};
use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::Owner;
use crate::cloud::CloudErrorKind;
use crate::cloud::profile;
use crate::cloud::vpn::{
    self, BuildInputs, Built, CustomerPart, Described, PartDecision, VpnBuilt, VpnDef, VpnPart,
};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{Intent, StepOutput};

const INPUTS: &[Input] = &[
    Input::Part(SpecPart::Name),
    Input::Part(SpecPart::Cloud),
    Input::Part(SpecPart::Vpn),
    Input::Definition,
];

/// `vpn.apply`.
pub const APPLY: ActionDef = ActionDef {
    name: "vpn.apply",
    summary: "builds the approved VPN instance: key secret, instance identity, firewall, instance, static address, routes",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(30 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(apply),
};

/// `vpn.customer`.
pub const CUSTOMER: ActionDef = ActionDef {
    name: "vpn.customer",
    summary: "waits until the customer has configured their side of the realm VPN",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(customer),
};

/// Rounds of describe → build per part before giving up (a create, then a finish, then the
/// describe that shows it done).
const ROUNDS: usize = 4;

/// The approved definition and its VPN, or nothing when the spec has no VPN.
fn approved_vpn(
    ctx: &Ctx<'_>,
) -> Result<Option<(crate::cloud::definition::ClusterDefinition, VpnDef)>, Failure> {
    if !ctx.spec.vpn.enabled {
        return Ok(None);
    }
    let (def, _) = approved_definition(ctx)?;
    match def.vpn.clone() {
        Some(v) => Ok(Some((def, v))),
        None => Err(Failure::permanent(
            "the spec enables the VPN but its definition has none (no subnet to put it in)",
        )),
    }
}

async fn apply(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let Some((approved, def)) = approved_vpn(ctx)? else {
        return Ok(Outcome::Skipped("no realm VPN in the spec".into()));
    };
    let cloud = ctx.cloud()?;
    let prof = profile::of(ctx.spec);
    let key = prof.tag_keys().realm;
    let user_data =
        vpn::user_data(&def, &prof.vpn_host()).map_err(|e| Failure::permanent(e.to_string()))?;
    let mut built = Built::new();
    let mut done = Vec::new();
    for part in VpnPart::ORDER {
        let mut round = 0;
        loop {
            round += 1;
            let mut facts = cloud.vpn_part(&def, part, &built).await?;
            let work = match vpn::judge(part, facts.as_ref(), &def, key, &def.realm, &built) {
                PartDecision::Adopt => {
                    if let Some(f) = facts {
                        built.insert(part, f);
                    }
                    break;
                }
                PartDecision::Conflict(why) => {
                    return Err(conflict(&format!("VPN {part}"), why));
                }
                PartDecision::Create => vec!["create".to_owned()],
                PartDecision::Finish(todo) => todo,
            };
            if round >= ROUNDS {
                return Err(Failure::retryable(format!(
                    "the VPN {part} is still not as defined after building it ({})",
                    work.join("; ")
                )));
            }
            ctx.record
                .intent(&Intent::VpnPart {
                    part,
                    name: def.name.clone(),
                    work: work.clone(),
                })
                .await?;
            ctx.record.kill_point(&format!("intent-vpn-{part}"));
            if part == VpnPart::Host && facts.is_some() {
                // Finishing an instance (attaching its address) needs it running.
                wait_running(ctx, cloud, &def, &built).await?;
                facts = cloud.vpn_part(&def, part, &built).await?;
            }
            // The key exists only here, between its making and the secret store's answer.
            let new_key = (part == VpnPart::Secret).then(vpn::new_key);
            let mut with = built.clone();
            if let Some(f) = facts {
                with.insert(part, f);
            }
            let inputs = BuildInputs {
                key: new_key.as_ref(),
                user_data: &user_data,
            };
            match cloud.build_vpn_part(&def, part, &with, &inputs).await {
                Ok(()) => {}
                // Someone (a run that died) made it meanwhile: the next describe judges it.
                Err(e) if e.kind == CloudErrorKind::Conflict => {}
                Err(e) => return Err(e.into()),
            }
            drop(new_key);
            ctx.record.kill_point(&format!("built-vpn-{part}"));
            done.push(format!("{part}: {}", work.join(", ")));
        }
        if part == VpnPart::Host {
            wait_running(ctx, cloud, &def, &built).await?;
        }
    }
    let address = match built.get(&VpnPart::Address).map(|f| &f.described) {
        Some(Described::Address { ip, .. }) => ip.clone(),
        _ => String::new(),
    };
    let summary = if done.is_empty() {
        format!("VPN instance {} adopted as built, at {address}", def.name)
    } else {
        format!(
            "VPN instance {} built at {address} ({})",
            def.name,
            done.join("; ")
        )
    };
    Ok(Outcome::Done(StepOutput {
        summary,
        vpn: Some(Box::new(VpnBuilt::from_parts(&def, &built))),
        built: Some(Box::new(approved)),
        ..StepOutput::default()
    }))
}

/// Waits until the VPN instance runs (the run's backoff, under the step's deadline).
async fn wait_running(
    ctx: &Ctx<'_>,
    cloud: &dyn crate::cloud::Cloud,
    def: &VpnDef,
    built: &Built,
) -> Result<(), Failure> {
    let what = format!("VPN instance {}", def.name);
    until_active(ctx, &what, async || {
        Ok(cloud
            .vpn_part(def, VpnPart::Host, built)
            .await?
            .and_then(|f| match f.described {
                Described::Host { status, .. } => Some((status, ())),
                _ => None,
            }))
    })
    .await
}

async fn customer(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let Some((_, def)) = approved_vpn(ctx)? else {
        return Ok(Outcome::Skipped("no realm VPN in the spec".into()));
    };
    let cloud = ctx.cloud()?;
    let none = Built::new();
    let host = cloud.vpn_part(&def, VpnPart::Host, &none).await?;
    let address = cloud.vpn_part(&def, VpnPart::Address, &none).await?;
    let (Some(host), Some(address)) = (host, address) else {
        return Err(Failure::permanent(format!(
            "the VPN instance {} or its address does not exist; vpn.apply builds them",
            def.name
        )));
    };
    let (Described::Host { network_cidrs, .. }, Described::Address { ip, .. }) =
        (&host.described, &address.described)
    else {
        return Err(Failure::permanent(
            "the cloud described the VPN parts oddly",
        ));
    };
    let asked = CustomerPart::new(&def, &profile::of(ctx.spec).vpn_host(), ip, network_cidrs);
    let covers = asked.digest();
    if let Some(a) = ctx
        .approvals
        .iter()
        .rev()
        .find(|a| a.phase == ctx.phase && a.covers == covers)
    {
        return Ok(Outcome::Done(StepOutput {
            summary: format!(
                "the customer's side of the VPN to {ip} is configured: confirmed by {} at {} (journal record {})",
                crate::text::one_line(&a.by),
                a.at,
                a.seq
            ),
            facts: Some(json!({"customerPart": asked})),
            ..StepOutput::default()
        }));
    }
    Ok(Outcome::Waiting {
        owner: Owner::Customer,
        reason: asked.instructions(),
        covers: Some(covers),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::cloud::testing::FakeCloud;
    use crate::cloud::vpn::{Described, PartFacts, VpnPart};
    use crate::engine::actions::cloud::tests::{
        Run, approved_install, install, intents, phase6, setup_for,
    };
    use crate::engine::model::event::StopOutcome;
    use crate::engine::model::output::Intent;
    use crate::spec::Provider;

    const STEPS: &str = "[{id: vpn, action: vpn.apply}, {id: vpn-customer, action: vpn.customer}]";

    fn vpn_run(cloud: Arc<FakeCloud>) -> Run {
        let mut r = setup_for(Provider::Eks, cloud);
        r.spec.vpn = crate::spec::VpnSpec {
            enabled: true,
            peer: Some("198.51.100.7/32".parse().unwrap()),
            routing: Some(crate::spec::Routing::RouteBased),
            remote_cidrs: vec!["192.168.10.0/24".parse().unwrap()],
            subnet: None,
        };
        r
    }

    fn approve_customer(r: &Run) {
        crate::engine::run::approve(
            &r.state.clone().into(),
            6,
            "ann",
            None,
            time::OffsetDateTime::now_utc(),
            None,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn each_part_is_built_once_the_key_goes_to_the_secret_alone_and_the_customer_is_waited_for()
     {
        let cloud = Arc::new(FakeCloud::default());
        let r = vpn_run(cloud.clone());
        let pb = phase6(STEPS);
        let res = approved_install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Waiting, "{}", res.message);
        assert!(res.message.contains("vpn-customer"), "{}", res.message);
        assert_eq!(cloud.calls("build_vpn_part"), 6, "one build per part");
        assert_eq!(cloud.vpn_keys(), [VpnPart::Secret]);
        let parts: Vec<VpnPart> = intents(&r.state)
            .into_iter()
            .filter_map(|i| match i {
                Intent::VpnPart { part, .. } => Some(part),
                _ => None,
            })
            .collect();
        assert_eq!(
            parts,
            VpnPart::ORDER,
            "an intent before each build, in order"
        );
        approve_customer(&r);
        let done = install(&r, &pb).await;
        assert_eq!(done.outcome, StopOutcome::Completed, "{}", done.message);
        assert_eq!(cloud.calls("build_vpn_part"), 6, "nothing built again");
    }

    #[tokio::test]
    async fn a_part_that_never_becomes_as_defined_fails_naming_what_is_missing() {
        let cloud = Arc::new(FakeCloud::default());
        cloud.stubborn_vpn_part(VpnPart::Firewall);
        let r = vpn_run(cloud.clone());
        let res = approved_install(&r, &phase6(STEPS)).await;
        assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
        assert!(
            res.message.contains("firewall is still not as defined"),
            "{}",
            res.message
        );
        // Two builds before the secret and identity (once each), then the firewall's rounds
        // in each of the step's three attempts; nothing after the firewall.
        assert_eq!(
            cloud.calls("build_vpn_part"),
            2 + 3 * (super::ROUNDS - 1),
            "bounded, and nothing after the firewall"
        );
    }

    #[tokio::test]
    async fn a_part_someone_else_made_stops_the_step_and_is_never_built_on() {
        let cloud = Arc::new(FakeCloud::default());
        cloud.insert_vpn_part(
            VpnPart::Firewall,
            PartFacts {
                id: "sg-foreign".into(),
                tags: Default::default(),
                described: Described::Firewall {
                    ingress: Vec::new(),
                    forwards: true,
                },
            },
        );
        let r = vpn_run(cloud.clone());
        let res = approved_install(&r, &phase6(STEPS)).await;
        assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
        assert!(
            res.message.contains("sg-foreign") && res.message.contains("not created by realmctl"),
            "{}",
            res.message
        );
        assert_eq!(
            cloud.calls("build_vpn_part"),
            2,
            "the secret and identity only: the foreign firewall is never touched"
        );
    }
}
