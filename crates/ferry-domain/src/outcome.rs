//! How a run of a message ends, from what happened to each of its entities: its state, a reason
//! that is true, its row counts, and each entity's stage states. Pure: pulled out of the
//! pipeline so that every combination is tested on its own.

use crate::message::{EntityState, MessageState, RowCounters};

/// What reading and staging (and, if it was written, writing) one entity of a message did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityRun {
    /// The entity's label, for reasons.
    pub label: String,
    /// Rows read and rejected; inserted, updated and unchanged as written (zero when the entity
    /// was not written).
    pub counters: RowCounters,
    /// A problem with the whole file that stopped reading it (a broken file, a failed XSLT
    /// transform), with the entity's label and the row where it applies.
    pub fatal: Option<String>,
}

impl EntityRun {
    fn has_problems(&self) -> bool {
        self.counters.rejected > 0 || self.fatal.is_some()
    }

    /// Nothing of the file could be read.
    fn unreadable(&self) -> bool {
        self.fatal.is_some() && self.counters.read == 0
    }
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub state: MessageState,
    pub reason: Option<String>,
    pub counters: RowCounters,
}

/// Whether an all-or-nothing run writes nothing: some entity rejected a row or failed.
pub fn rolls_back(runs: &[EntityRun], all_or_nothing: bool) -> bool {
    all_or_nothing && runs.iter().any(EntityRun::has_problems)
}

/// The state, reason and counters of a run whose entities did `runs` (in execution order). For an
/// all-or-nothing job that [`rolls_back`], `runs` carry no written rows and the reason says
/// nothing was imported.
pub fn verdict(runs: &[EntityRun], all_or_nothing: bool) -> Verdict {
    let counters = runs.iter().fold(RowCounters::default(), |total, run| total + run.counters);
    let fatal: Vec<&str> = runs.iter().filter_map(|r| r.fatal.as_deref()).collect();
    let rejected = format!("{} of {} rows were rejected", counters.rejected, counters.read);
    let (state, reason) = if !runs.iter().any(EntityRun::has_problems) {
        (MessageState::Processed, None)
    } else if !fatal.is_empty() && runs.iter().all(|r| r.unreadable() || !r.has_problems() && r.counters.read == 0) {
        // Nothing could be read at all: the message failed before any row.
        (MessageState::PreProcessingError, Some(fatal.join("; ")))
    } else if rolls_back(runs, all_or_nothing) {
        let mut what = Vec::new();
        if counters.rejected > 0 {
            what.push(rejected);
        }
        what.extend(fatal.iter().map(|f| f.to_string()));
        let reason =
            format!("rolled back: this job imports all or nothing and {}; nothing was imported", what.join("; "));
        (MessageState::ProcessedWithErrors, Some(reason))
    } else if !fatal.is_empty() && counters.imported() == 0 {
        (MessageState::PreProcessingError, Some(fatal.join("; ")))
    } else {
        let mut reason = rejected;
        for f in &fatal {
            reason.push_str("; ");
            reason.push_str(f);
        }
        (MessageState::ProcessedWithErrors, Some(reason))
    };
    Verdict { state, reason, counters }
}

/// The staging and target states of one entity at the end of its run: staging fails when
/// nothing of the file could be read; the target fails too, and when the entity was not written.
pub fn entity_states(run: &EntityRun, written: bool) -> (EntityState, EntityState) {
    let unreadable = run.unreadable();
    let staging = if unreadable { EntityState::Error } else { EntityState::Finished };
    let target = if unreadable || !written { EntityState::Error } else { EntityState::Finished };
    (staging, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageState::*;

    fn run(label: &str, read: i64, rejected: i64, imported: i64, fatal: Option<&str>) -> EntityRun {
        EntityRun {
            label: label.into(),
            counters: RowCounters { read, rejected, inserted: imported, ..Default::default() },
            fatal: fatal.map(str::to_owned),
        }
    }

    #[test]
    fn verdicts_follow_from_the_entities() {
        // Name, entities, all or nothing → state, reason.
        type Case = (&'static str, Vec<EntityRun>, bool, MessageState, Option<&'static str>);
        let cases: Vec<Case> = vec![
            ("clean", vec![run("A", 3, 0, 3, None)], false, Processed, None),
            ("empty file", vec![run("A", 0, 0, 0, None)], false, Processed, None),
            ("bad rows", vec![run("A", 3, 1, 2, None)], false, ProcessedWithErrors, Some("1 of 3 rows were rejected")),
            ("broken file", vec![run("A", 0, 0, 0, Some("A: not CSV"))], false, PreProcessingError, Some("A: not CSV")),
            (
                "broken part way",
                vec![run("A", 5, 0, 4, Some("A: row 6: bad quote"))],
                false,
                ProcessedWithErrors,
                Some("0 of 5 rows were rejected; A: row 6: bad quote"),
            ),
            (
                "one of two broken",
                vec![run("A", 2, 0, 2, None), run("B", 0, 0, 0, Some("B: not XML"))],
                false,
                ProcessedWithErrors,
                Some("0 of 2 rows were rejected; B: not XML"),
            ),
            (
                "all or nothing, bad row",
                vec![run("A", 3, 1, 0, None), run("B", 4, 0, 0, None)],
                true,
                ProcessedWithErrors,
                Some(
                    "rolled back: this job imports all or nothing and 1 of 7 rows were rejected; nothing was imported",
                ),
            ),
            (
                "all or nothing, one entity broken",
                vec![run("A", 2, 0, 0, None), run("B", 0, 0, 0, Some("B: not XML"))],
                true,
                ProcessedWithErrors,
                Some("rolled back: this job imports all or nothing and B: not XML; nothing was imported"),
            ),
            (
                "all or nothing, nothing readable",
                vec![run("A", 0, 0, 0, Some("A: not CSV"))],
                true,
                PreProcessingError,
                Some("A: not CSV"),
            ),
            ("all or nothing, clean", vec![run("A", 3, 0, 3, None)], true, Processed, None),
        ];
        for (name, runs, all_or_nothing, state, reason) in cases {
            let v = verdict(&runs, all_or_nothing);
            assert_eq!((v.state, v.reason.as_deref()), (state, reason), "{name}");
        }
    }

    #[test]
    fn counters_add_up_and_rollbacks_are_seen() {
        let runs = [run("A", 3, 1, 2, None), run("B", 4, 0, 4, None)];
        assert_eq!(
            verdict(&runs, false).counters,
            RowCounters { read: 7, rejected: 1, inserted: 6, ..Default::default() }
        );
        assert!(rolls_back(&runs, true));
        assert!(!rolls_back(&runs, false));
        assert!(!rolls_back(&[run("A", 3, 0, 0, None)], true));
    }

    #[test]
    fn entity_states_show_what_was_read_and_written() {
        use EntityState::*;
        assert_eq!(entity_states(&run("A", 3, 0, 3, None), true), (Finished, Finished));
        assert_eq!(entity_states(&run("A", 3, 1, 0, None), false), (Finished, Error));
        assert_eq!(entity_states(&run("A", 0, 0, 0, Some("A: bad")), true), (Error, Error));
        assert_eq!(entity_states(&run("A", 2, 0, 2, Some("A: row 3: bad")), true), (Finished, Finished));
    }
}
