//! The statements of each ledger operation on PostgreSQL, inside a transaction that
//! [`super::PgLedger::run`] opened (and, for writes, locked to the realm). The decisions are the
//! pure [`model`] functions; this file only reads the facts they need and writes their outcome,
//! with as few round trips as the driver's pipelining allows.

use super::classify;
use crate::quota::model::{
    self, Decision, Deployment, Env, EnvUsage, Facts, Key, RealmConfig, Size, State, Version,
};
use crate::quota::ops::{Answer, DecisionRecord, LedgerError, Op, RealmStatus, Retirement, now};

/// An open transaction and the database name for errors.
pub(super) struct Tx<'a> {
    pub(super) client: &'a deadpool_postgres::ClientWrapper,
    pub(super) db: &'a str,
    /// Set once [`Tx::execute_and_commit`] committed.
    pub(super) committed: std::sync::atomic::AtomicBool,
}

impl Tx<'_> {
    fn err(&self) -> impl Fn(tokio_postgres::Error) -> LedgerError + '_ {
        |e| classify(self.db, &e)
    }

    fn corrupt(&self, detail: String) -> LedgerError {
        LedgerError::Corrupt {
            db: self.db.to_owned(),
            detail,
        }
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, LedgerError> {
        let st = self.client.prepare_cached(sql).await.map_err(self.err())?;
        self.client.execute(&st, params).await.map_err(self.err())
    }

    /// The transaction's last statement and its COMMIT, pipelined (one round trip). If the
    /// statement fails, PostgreSQL turns the COMMIT of the failed transaction into a
    /// rollback, and the statement's error is returned.
    async fn execute_and_commit(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), LedgerError> {
        let st = self.client.prepare_cached(sql).await.map_err(self.err())?;
        let (written, committed) = futures::join!(
            self.client.execute(&st, params),
            self.client.batch_execute("COMMIT")
        );
        written.map_err(self.err())?;
        committed.map_err(self.err())?;
        self.committed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        let st = self.client.prepare_cached(sql).await.map_err(self.err())?;
        self.client.query(&st, params).await.map_err(self.err())
    }

    async fn config(&self, realm: &str) -> Result<RealmConfig, LedgerError> {
        let rows = self
            .query(
                "SELECT pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size FROM realms WHERE name = $1",
                &[&realm],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Err(LedgerError::UnknownRealm(realm.to_owned()));
        };
        self.config_of(r)
    }

    /// When the realm was retired, if it was (it must be seeded).
    async fn retired(&self, realm: &str) -> Result<Option<String>, LedgerError> {
        let rows = self
            .query("SELECT retired_at FROM realms WHERE name = $1", &[&realm])
            .await?;
        match rows.first() {
            Some(r) => Ok(r.get(0)),
            None => Err(LedgerError::UnknownRealm(realm.to_owned())),
        }
    }

    /// Retires `realm` once: the first retirement's time stands, and is logged.
    async fn retire(&self, realm: &str, actor: &str) -> Result<Retirement, LedgerError> {
        // A write holds the realm's advisory lock (`Op::writes`): no admission of the realm
        // runs between this read and the commit.
        if let Some(then) = self.retired(realm).await? {
            return Ok(Retirement {
                realm: realm.to_owned(),
                retired_at: then,
                now: false,
            });
        }
        let at = now();
        self.execute(
            "UPDATE realms SET retired_at = $2 WHERE name = $1",
            &[&realm, &at],
        )
        .await?;
        self.log_and_commit(
            actor,
            realm,
            "retire",
            "{}",
            true,
            None,
            &model::retire_detail(),
            None,
        )
        .await?;
        Ok(Retirement {
            realm: realm.to_owned(),
            retired_at: at,
            now: true,
        })
    }

    /// The realm config in the first five columns of every `realms` read
    /// (`pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size`).
    fn config_of(&self, r: &tokio_postgres::Row) -> Result<RealmConfig, LedgerError> {
        Ok(RealmConfig {
            pipeline_subscriptions: self.count(r.get(0))?,
            extra_test_rtus: self.count(r.get(1))?,
            extra_prod_rtus: self.count(r.get(2))?,
            max_replicas: self.small(r.get(3))?,
            max_size: r
                .get::<_, &str>(4)
                .parse::<Size>()
                .map_err(|d| self.corrupt(d))?,
        })
    }

    fn count(&self, v: i64) -> Result<u64, LedgerError> {
        u64::try_from(v).map_err(|_| self.corrupt(format!("negative count {v}")))
    }

    fn small(&self, v: i64) -> Result<u32, LedgerError> {
        u32::try_from(v).map_err(|_| self.corrupt(format!("{v} is out of range")))
    }

    async fn state(&self, realm: &str) -> Result<State, LedgerError> {
        let rows = self
            .query(
                "SELECT environment, pipeline, major, minor, size, replicas FROM deployments WHERE realm = $1",
                &[&realm],
            )
            .await?;
        let mut state = State::new();
        for r in rows {
            let d = Deployment {
                environment: r.get::<_, &str>(0).parse().map_err(|d| self.corrupt(d))?,
                pipeline: r.get(1),
                version: Version {
                    major: self.small(r.get(2))?,
                    minor: self.small(r.get(3))?,
                },
                size: r.get::<_, &str>(4).parse().map_err(|d| self.corrupt(d))?,
                replicas: self.small(r.get(5))?,
            };
            state.insert(d.key(), d);
        }
        Ok(state)
    }

    /// The realm's config, the environment's usage counters and the current deployment of
    /// (pipeline, major), in one statement of primary-key reads (one round trip), so an
    /// admission costs the same however many pipelines the realm runs.
    async fn admission_facts(
        &self,
        realm: &str,
        request: &Deployment,
    ) -> Result<(RealmConfig, Facts), LedgerError> {
        let env = request.environment.as_str();
        let major = i64::from(request.version.major);
        let rows = self
            .query(
                "SELECT r.pipeline_subscriptions, r.extra_test_rtus, r.extra_prod_rtus, r.max_replicas, r.max_size,
                        u.subscriptions_used, u.rtus_used, d.minor, d.size, d.replicas, r.retired_at
                 FROM realms r
                 LEFT JOIN usage u ON u.realm = r.name AND u.environment = $2
                 LEFT JOIN deployments d ON d.realm = r.name AND d.environment = $2 AND d.pipeline = $3 AND d.major = $4
                 WHERE r.name = $1",
                &[&realm, &env, &request.pipeline, &major],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Err(LedgerError::UnknownRealm(realm.to_owned()));
        };
        let config = self.config_of(r)?;
        let (n, rtus) = match (r.get::<_, Option<i64>>(5), r.get::<_, Option<i64>>(6)) {
            (Some(n), Some(rtus)) => (self.count(n)?, self.count(rtus)?),
            _ => (0, 0),
        };
        let existing = match r.get::<_, Option<i64>>(7) {
            None => None,
            Some(minor) => Some(Deployment {
                environment: request.environment,
                pipeline: request.pipeline.clone(),
                version: Version {
                    major: request.version.major,
                    minor: self.small(minor)?,
                },
                size: r.get::<_, &str>(8).parse().map_err(|d| self.corrupt(d))?,
                replicas: self.small(r.get(9))?,
            }),
        };
        let facts = Facts {
            subscriptions_used: n,
            rtus_used: rtus,
            existing,
            retired: r.get(10),
        };
        Ok((config, facts))
    }

    async fn store_usage(&self, realm: &str, env: Env, u: &EnvUsage) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO usage (realm, environment, subscriptions_used, rtus_used) VALUES ($1, $2, $3, $4)
             ON CONFLICT (realm, environment) DO UPDATE SET subscriptions_used = excluded.subscriptions_used, rtus_used = excluded.rtus_used",
            &[&realm, &env.as_str(), &(u.subscriptions_used as i64), &(u.rtus_used as i64)],
        )
        .await
        .map(drop)
    }

    #[allow(clippy::too_many_arguments)]
    /// Appends the decision-log row, always a write's last statement, and commits with it.
    async fn log_and_commit(
        &self,
        actor: &str,
        realm: &str,
        action: &str,
        request: &str,
        admitted: bool,
        reason: Option<&str>,
        detail: &str,
        usage: Option<(&EnvUsage, &EnvUsage)>,
    ) -> Result<(), LedgerError> {
        let js = |u: &EnvUsage| u.to_json_string();
        let (before, after) = match usage {
            Some((b, a)) => (Some(js(b)), Some(js(a))),
            None => (None, None),
        };
        self.execute_and_commit(
            "INSERT INTO decisions (at, actor, realm, action, request, admitted, reason, detail, usage_before, usage_after)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&now(), &actor, &realm, &action, &request, &admitted, &reason, &detail, &before, &after],
        )
        .await
    }

    async fn seed(
        &self,
        realm: &str,
        config: &RealmConfig,
        actor: &str,
    ) -> Result<(), LedgerError> {
        let state = self.state(realm).await?;
        let request = serde_json::to_string(config).unwrap_or_default();
        let retired = match self.retired(realm).await {
            Err(LedgerError::UnknownRealm(_)) => None,
            other => other?,
        };
        if let Some(then) = retired {
            let refused = LedgerError::Retired {
                realm: realm.to_owned(),
                at: then,
            };
            self.log_and_commit(
                actor,
                realm,
                "seed",
                &request,
                false,
                Some("realm_retired"),
                &model::retired_detail(),
                None,
            )
            .await?;
            return Err(refused);
        }
        if let Err(detail) = model::covers(config, &state) {
            self.log_and_commit(
                actor,
                realm,
                "seed",
                &request,
                false,
                Some("below_current_use"),
                &detail,
                None,
            )
            .await?;
            return Err(LedgerError::SeedRefused {
                realm: realm.to_owned(),
                detail,
            });
        }
        self.execute(
            "INSERT INTO realms (name, pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET pipeline_subscriptions = excluded.pipeline_subscriptions,
               extra_test_rtus = excluded.extra_test_rtus, extra_prod_rtus = excluded.extra_prod_rtus,
               max_replicas = excluded.max_replicas, max_size = excluded.max_size, updated_at = excluded.updated_at",
            &[
                &realm,
                &(config.pipeline_subscriptions as i64),
                &(config.extra_test_rtus as i64),
                &(config.extra_prod_rtus as i64),
                &i64::from(config.max_replicas),
                &config.max_size.as_str(),
                &now(),
            ],
        )
        .await?;
        self.log_and_commit(
            actor,
            realm,
            "seed",
            &request,
            true,
            None,
            &model::seed_detail(config),
            None,
        )
        .await
    }

    /// Decides on `request` from the facts read under the realm's lock, and records it.
    async fn deploy(
        &self,
        realm: &str,
        (request, req): (&Deployment, &str),
        actor: &str,
        (config, facts): (RealmConfig, Facts),
    ) -> Result<Decision, LedgerError> {
        let d = model::decide_with(&config, &facts, request);
        if !d.admitted {
            self.log_and_commit(
                actor,
                realm,
                "deploy",
                req,
                false,
                d.reason.map(|r| r.as_str()),
                &d.detail,
                Some((&d.before, &d.after)),
            )
            .await?;
            return Ok(d);
        }
        // The deployment, the environment's counters and the decision-log row in one
        // statement, pipelined with the COMMIT (one round trip).
        let js = |u: &EnvUsage| u.to_json_string();
        let at = now();
        self.execute_and_commit(
            "WITH deployed AS (
                 INSERT INTO deployments (realm, environment, pipeline, major, minor, size, replicas, rtus, deployed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (realm, environment, pipeline, major) DO UPDATE SET minor = excluded.minor,
                   size = excluded.size, replicas = excluded.replicas, rtus = excluded.rtus, deployed_at = excluded.deployed_at
             ), counted AS (
                 INSERT INTO usage (realm, environment, subscriptions_used, rtus_used) VALUES ($1, $2, $10, $11)
                 ON CONFLICT (realm, environment) DO UPDATE SET subscriptions_used = excluded.subscriptions_used, rtus_used = excluded.rtus_used
             )
             INSERT INTO decisions (at, actor, realm, action, request, admitted, reason, detail, usage_before, usage_after)
             VALUES ($9, $12, $1, 'deploy', $13, true, NULL, $14, $15, $16)",
            &[
                &realm,
                &request.environment.as_str(),
                &request.pipeline,
                &i64::from(request.version.major),
                &i64::from(request.version.minor),
                &request.size.as_str(),
                &i64::from(request.replicas),
                &(request.rtus() as i64),
                &at,
                &(d.after.subscriptions_used as i64),
                &(d.after.rtus_used as i64),
                &actor,
                &req,
                &d.detail,
                &js(&d.before),
                &js(&d.after),
            ],
        )
        .await?;
        Ok(d)
    }

    async fn undeploy(
        &self,
        realm: &str,
        key: &Key,
        actor: &str,
    ) -> Result<Deployment, LedgerError> {
        let config = self.config(realm).await?;
        let state = self.state(realm).await?;
        let change =
            model::undeploy(&config, &state, key).ok_or_else(|| LedgerError::NotDeployed {
                realm: realm.to_owned(),
                environment: key.environment,
                pipeline: key.pipeline.clone(),
                major: key.major,
            })?;
        self.execute(
            "DELETE FROM deployments WHERE realm = $1 AND environment = $2 AND pipeline = $3 AND major = $4",
            &[&realm, &key.environment.as_str(), &key.pipeline, &i64::from(key.major)],
        )
        .await?;
        self.store_usage(realm, key.environment, &change.after)
            .await?;
        self.log_and_commit(
            actor,
            realm,
            "undeploy",
            &serde_json::to_string(key).unwrap_or_default(),
            true,
            None,
            &change.detail,
            Some((&change.before, &change.after)),
        )
        .await?;
        Ok(change.removed)
    }

    async fn decisions(
        &self,
        realm: &str,
        after: i64,
        limit: Option<u32>,
    ) -> Result<Vec<DecisionRecord>, LedgerError> {
        let limit = limit.map(i64::from);
        let rows = self
            .query(
                "SELECT id, at, actor, action, request, admitted, reason, detail FROM decisions WHERE realm = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&realm, &after, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DecisionRecord {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                request: crate::quota::ops::request_value(r.get(4)),
                admitted: r.get(5),
                reason: r.get(6),
                detail: r.get(7),
            })
            .collect())
    }
}

/// Opens the transaction with `begin` and runs `op` in it.
pub(super) async fn run_op(t: &Tx<'_>, begin: &str, op: &Op) -> Result<Answer, LedgerError> {
    if let Op::Deploy {
        realm,
        request,
        logged,
        actor,
    } = op
    {
        // The hot path: the admission's reads are pipelined behind BEGIN and the lock
        // (PostgreSQL runs them in order, so their snapshot is taken after the lock was
        // granted), and its writes ahead of the COMMIT: two round trips in all.
        let (begun, facts) = futures::join!(
            t.client.batch_execute(begin),
            t.admission_facts(realm, request)
        );
        begun.map_err(t.err())?;
        return t
            .deploy(realm, (request, logged), actor, facts?)
            .await
            .map(Answer::Decided);
    }
    t.client.batch_execute(begin).await.map_err(t.err())?;
    match op {
        Op::Seed {
            realm,
            config,
            actor,
        } => t.seed(realm, config, actor).await.map(|()| Answer::Seeded),
        Op::Deploy { .. } => unreachable!("handled above"),
        Op::WhatIf { realm, request } => {
            let (config, facts) = t.admission_facts(realm, request).await?;
            Ok(Answer::Decided(model::decide_with(
                &config, &facts, request,
            )))
        }
        Op::Undeploy { realm, key, actor } => {
            t.undeploy(realm, key, actor).await.map(Answer::Undeployed)
        }
        Op::Status { realm } => {
            let config = t.config(realm).await?;
            let state = t.state(realm).await?;
            Ok(Answer::Status(RealmStatus {
                retired_at: t.retired(realm).await?,
                ..RealmStatus::new(realm, config, state)
            }))
        }
        Op::Decisions {
            realm,
            after,
            limit,
        } => t
            .decisions(realm, *after, *limit)
            .await
            .map(Answer::Decisions),
        Op::Retire { realm, actor } => t.retire(realm, actor).await.map(Answer::Retired),
    }
}
