//! [`Crm::dashboard`]: the figures of [`crate::dashboard`] for one caller.

use serde::{Deserialize, Serialize};

use super::{Actor, Crm};
use crate::audit::ActivityItem;
use crate::clock::Date;
use crate::dashboard::{DashboardData, DashboardQuery, TallyKey, task_windows};
use crate::error::{Operation, Result};
use crate::model::{Contact, Entity, EntityKind, Task};
use crate::permission::{Resource, Scope, read_scope};

/// One pipeline stage's deals: live ones, archived ones left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageFigures {
    /// The stage value.
    pub stage: String,
    /// Its label (the value itself for a stage no longer configured).
    pub label: String,
    /// Whether the configuration counts it as closed (won or lost).
    pub closed: bool,
    /// Deals in it.
    pub count: u64,
    /// Sum of their amounts, in minor units of the workspace currency.
    pub amount: i128,
}

/// The caller's open tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFigures {
    /// Due before today.
    pub overdue: u64,
    /// Due today.
    pub today: u64,
    /// Due after today, up to the end of the week (Saturday).
    pub this_week: u64,
    /// Every open task, undated ones included.
    pub open: u64,
    /// The next ones: by due date (undated last), then id; at most
    /// [`crate::dashboard::NEXT_TASKS`].
    pub next: Vec<Task>,
}

/// Live records per kind, as the caller may read them (see [`crate::dashboard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Companies.
    pub companies: u64,
    /// Contacts.
    pub contacts: u64,
    /// Deals (archived ones included).
    pub deals: u64,
    /// Notes.
    pub notes: u64,
    /// Tasks: every task for admins and managers, the caller's own for the others.
    pub tasks: u64,
    /// Tags.
    pub tags: u64,
}

/// What `GET /dashboard` shows (Atomic CRM's dashboard); see [`crate::dashboard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// The day the task windows are computed from.
    #[serde(with = "crate::clock::iso_date")]
    pub today: Date,
    /// The last day of "this week" (the Saturday on or after `today`).
    #[serde(with = "crate::clock::iso_date")]
    pub week_end: Date,
    /// Deals per stage: the configured stages in pipeline order, then any other stage that
    /// still holds deals.
    pub deals_by_stage: Vec<StageFigures>,
    /// The caller's open tasks.
    pub tasks: TaskFigures,
    /// The latest activity, newest first (at most [`crate::dashboard::LATEST_ACTIVITY`]).
    pub activity: Vec<ActivityItem>,
    /// Hot contacts, last seen most recently first (at most
    /// [`crate::dashboard::HOT_CONTACTS`]).
    pub hot_contacts: Vec<Contact>,
    /// Live records per kind.
    pub counts: RecordCounts,
}

/// The Saturday on or after `day`: the end of its week when weeks start on Sunday.
pub(crate) fn week_end(day: Date) -> Date {
    let ahead = 6 - i64::from(day.weekday().number_days_from_sunday());
    day.checked_add(time::Duration::days(ahead)).unwrap_or(day)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Crm {
    /// The caller's dashboard (see [`crate::dashboard`] for every figure's definition and who
    /// sees what). `today` is the caller's date (a client passes its local date); `None`
    /// takes the engine clock's UTC date. Everyone may call it. The figures come from one
    /// snapshot of the store: under concurrent writes they are those of a moment, never a
    /// mix.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn dashboard(&self, actor: &Actor, today: Option<Date>) -> Result<Dashboard> {
        let ctx = |e: crate::Error| e.with_context(Operation::Load, EntityKind::Workspace);
        let today = today.unwrap_or_else(|| self.now().date());
        let week_end = week_end(today);
        let config = self.load_config(actor.workspace_id()).await.map_err(ctx)?;
        let data = self
            .storage()
            .dashboard(actor.workspace_id(), &DashboardQuery::of(actor.user_id()))
            .await
            .map_err(ctx)?;
        let all = |r| read_scope(actor.role(), r) == Scope::All;
        let counts = self.counts(actor, &data);
        let mut deals_by_stage = Vec::new();
        if all(Resource::Deal) {
            for s in &config.deal_stages {
                let t = data.tally(&TallyKey::Stage(s.value.clone()));
                deals_by_stage.push(StageFigures {
                    stage: s.value.clone(),
                    label: s.label.clone(),
                    closed: config.deal_pipeline_closed.contains(&s.value),
                    count: count(t.count),
                    amount: t.amount,
                });
            }
            for (k, t) in &data.tallies {
                if let Some(TallyKey::Stage(stage)) = TallyKey::decode(k)
                    && t.count != 0
                    && !config.deal_stages.iter().any(|s| s.value == stage)
                {
                    deals_by_stage.push(StageFigures {
                        label: stage.clone(),
                        closed: config.deal_pipeline_closed.contains(&stage),
                        stage,
                        count: count(t.count),
                        amount: t.amount,
                    });
                }
            }
        }
        let [overdue, due_today, this_week, open] =
            task_windows(&data, actor.user_id(), today, week_end);
        let next: Vec<Task> = data
            .next_tasks
            .into_iter()
            .filter_map(Task::from_record)
            .filter(|t| t.owner_id == actor.user_id())
            .collect();
        let hot: Vec<Contact> = if all(Resource::Contact) {
            data.hot_contacts
                .into_iter()
                .filter_map(Contact::from_record)
                .collect()
        } else {
            Vec::new()
        };
        let activity = data
            .activity
            .into_iter()
            .filter(|e| Resource::of_record(e.entity).is_some_and(all))
            .map(|e| ActivityItem {
                at: e.at,
                actor_id: e.actor_id,
                entity: e.entity,
                record_id: e.record_id,
                label: e.label,
                audit_id: e.id,
            })
            .collect();
        Ok(Dashboard {
            today,
            week_end,
            deals_by_stage,
            tasks: TaskFigures {
                overdue,
                today: due_today,
                this_week,
                open,
                next: self.present_all(actor, next, None).await.map_err(ctx)?,
            },
            activity,
            hot_contacts: self.present_all(actor, hot, None).await.map_err(ctx)?,
            counts,
        })
    }

    /// Live records per kind as `actor` may read them: workspace-wide where the read scope
    /// is the workspace, the caller's own where it is "own only", zero where it is none.
    fn counts(&self, actor: &Actor, data: &DashboardData) -> RecordCounts {
        let of = |kind: EntityKind| {
            let Some(resource) = Resource::of_record(kind) else {
                return 0;
            };
            let t = match read_scope(actor.role(), resource) {
                Scope::All => data.tally(&TallyKey::Live(kind)),
                Scope::Own => data.tally(&TallyKey::LiveOwned(actor.user_id(), kind)),
                Scope::None => return 0,
            };
            count(t.count)
        };
        RecordCounts {
            companies: of(EntityKind::Company),
            contacts: of(EntityKind::Contact),
            deals: of(EntityKind::Deal),
            notes: of(EntityKind::Note),
            tasks: of(EntityKind::Task),
            tags: of(EntityKind::Tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_end_on_saturday() {
        use time::macros::date;
        // 2026-12-02 is a Wednesday.
        assert_eq!(week_end(date!(2026 - 12 - 02)), date!(2026 - 12 - 05));
        assert_eq!(week_end(date!(2026 - 12 - 05)), date!(2026 - 12 - 05));
        assert_eq!(week_end(date!(2026 - 12 - 06)), date!(2026 - 12 - 12));
    }
}
