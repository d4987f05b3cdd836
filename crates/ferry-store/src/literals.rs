//! The one place the store spells enumerations as SQL literals. What is written to the database
//! is a compatibility promise between ferry versions, so it is spelled here, apart from every
//! other spelling of the same values (the API's, the configuration's).

use crate::error::{StoreError, StoreResult};
use ferry_domain::{
    ChangeType, DeliveryState, EntityState, JobKind, MessageState, Operation, Origin, Phase, ProfileState, RefreshMode,
    Stage, SyncState, TargetKind,
};
use ferry_model::Value;
use ferry_sql::RowExt;

/// An enumeration the store keeps as text.
pub(crate) trait Literal: Sized + Copy + PartialEq + 'static {
    /// Every value with its literal.
    const TABLE: &'static [(Self, &'static str)];
    /// What the column is called in messages about corrupt values.
    const WHAT: &'static str;

    fn literal(self) -> &'static str {
        Self::TABLE.iter().find(|(v, _)| *v == self).map(|(_, l)| *l).expect("every value has a literal")
    }

    fn from_literal(text: &str) -> StoreResult<Self> {
        Self::TABLE
            .iter()
            .find(|(_, l)| *l == text)
            .map(|(v, _)| *v)
            .ok_or_else(|| StoreError::corrupt(Self::WHAT, format!("unknown value '{text}'")))
    }

    /// The literal as a bound value.
    fn value(self) -> Value {
        Value::String(self.literal().to_owned())
    }

    /// `('a', 'b')`: a list of literals for `IN` (constants of the store's own, never user input).
    fn in_list(values: &[Self]) -> String {
        let quoted: Vec<String> = values.iter().map(|v| format!("'{}'", v.literal())).collect();
        format!("({})", quoted.join(", "))
    }
}

macro_rules! literals {
    ($ty:ty, $what:literal, { $($value:expr => $text:literal),+ $(,)? }) => {
        impl Literal for $ty {
            const TABLE: &'static [(Self, &'static str)] = &[$(($value, $text)),+];
            const WHAT: &'static str = $what;
        }
    };
}

literals!(MessageState, "message state", {
    MessageState::Enqueued => "Enqueued",
    MessageState::Processing => "Processing",
    MessageState::Retrying => "Retrying",
    MessageState::Processed => "Processed",
    MessageState::ProcessedWithErrors => "ProcessedWithErrors",
    MessageState::PreProcessingError => "PreProcessingError",
    MessageState::Canceled => "Canceled",
});

literals!(DeliveryState, "delivery state", {
    DeliveryState::Ready => "Ready",
    DeliveryState::Dequeued => "Dequeued",
    DeliveryState::Downloaded => "Downloaded",
    DeliveryState::Acked => "Acked",
});

literals!(JobKind, "message kind", { JobKind::File => "file", JobKind::Package => "package" });

literals!(EntityState, "entity state", {
    EntityState::NotStarted => "NotStarted",
    EntityState::Executing => "Executing",
    EntityState::Finished => "Finished",
    EntityState::Error => "Error",
});

literals!(Stage, "error stage", { Stage::Parse => "parse", Stage::Staging => "staging", Stage::Target => "target" });

literals!(Origin, "definition origin", { Origin::Config => "config", Origin::Api => "api" });

literals!(Operation, "project operation", { Operation::Import => "import", Operation::Export => "export" });

literals!(RefreshMode, "refresh mode", { RefreshMode::Full => "full", RefreshMode::Incremental => "incremental" });

literals!(ProfileState, "profile state", {
    ProfileState::Inactive => "Inactive",
    ProfileState::Active => "Active",
    ProfileState::MetadataOnly => "MetadataOnly",
    ProfileState::DataOnly => "DataOnly",
});

literals!(TargetKind, "target kind", {
    TargetKind::Postgres => "postgres",
    TargetKind::MySql => "mysql",
    TargetKind::Sqlite => "sqlite",
});

literals!(Phase, "replication phase", { Phase::Initial => "InitialSync", Phase::Delta => "DeltaSync" });

literals!(SyncState, "replication state", { SyncState::Running => "Running", SyncState::Paused => "Paused" });

literals!(ChangeType, "change type", {
    ChangeType::InitialExport => "Trigger Initial Export",
    ChangeType::New => "New",
    ChangeType::Update => "Update",
    ChangeType::Delete => "Delete",
});

/// Reading a literal column of a decoded row.
pub(crate) trait LiteralColumn {
    fn literal<T: Literal>(&self, i: usize) -> StoreResult<T>;
}

impl LiteralColumn for [Value] {
    fn literal<T: Literal>(&self, i: usize) -> StoreResult<T> {
        T::from_literal(&self.text(i)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Literal + std::fmt::Debug>() {
        for (value, text) in T::TABLE {
            assert_eq!(value.literal(), *text);
            assert_eq!(T::from_literal(text).unwrap(), *value);
        }
        assert!(T::from_literal("nonsense").is_err());
    }

    #[test]
    fn every_literal_round_trips() {
        round_trips::<MessageState>();
        round_trips::<DeliveryState>();
        round_trips::<JobKind>();
        round_trips::<EntityState>();
        round_trips::<Stage>();
        round_trips::<Origin>();
        round_trips::<Operation>();
        round_trips::<RefreshMode>();
        round_trips::<ProfileState>();
        round_trips::<TargetKind>();
        round_trips::<Phase>();
        round_trips::<SyncState>();
        round_trips::<ChangeType>();
        assert_eq!(MessageState::ALL.len(), MessageState::TABLE.len());
        assert_eq!(
            MessageState::in_list(&[MessageState::Enqueued, MessageState::Retrying]),
            "('Enqueued', 'Retrying')"
        );
    }
}
