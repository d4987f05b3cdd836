//! Verification of a profile's target against the source: row counts, then a checksum of
//! `(Id, versionnumber)` per key range, then the exact differences inside ranges that differ.
//! Pure: the service reads both sides and repairs.

use std::collections::BTreeMap;
use uuid::Uuid;

/// What `verify` found for one entity.
#[derive(Clone, Debug, Default)]
pub struct EntityVerify {
    pub entity: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Key ranges (by the first hex digit of `Id`) compared, and those whose checksum differed.
    pub ranges: u32,
    pub ranges_differing: u32,
    pub missing: Vec<Uuid>,
    pub extra: Vec<Uuid>,
    pub outdated: Vec<Uuid>,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub entities: Vec<EntityVerify>,
    pub repaired: bool,
}

impl VerifyReport {
    pub fn differences(&self) -> usize {
        self.entities.iter().map(|e| e.missing.len() + e.extra.len() + e.outdated.len()).sum()
    }
}

/// Compares sorted `(Id, version)` lists: per key range (first hex digit of the Id) a count
/// and checksum, then the exact differences inside ranges that differ.
pub(crate) fn compare(entity: &str, source: &[(Uuid, i64)], target: &[(Uuid, i64)]) -> EntityVerify {
    fn range(id: &Uuid) -> usize {
        (id.as_bytes()[0] >> 4) as usize
    }
    fn checksums(rows: &[(Uuid, i64)]) -> [(u64, u64); 16] {
        let mut sums = [(0u64, 0u64); 16];
        for (id, version) in rows {
            let r = &mut sums[range(id)];
            r.0 += 1;
            let h = (id.as_u128() as u64)
                ^ ((id.as_u128() >> 64) as u64)
                ^ (*version as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            r.1 = r.1.wrapping_add(h.rotate_left(17).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        }
        sums
    }
    let (a, b) = (checksums(source), checksums(target));
    let differing: Vec<usize> = (0..16).filter(|&i| a[i] != b[i]).collect();
    let mut result = EntityVerify {
        entity: entity.to_string(),
        ranges: 16,
        ranges_differing: differing.len() as u32,
        ..Default::default()
    };
    if differing.is_empty() {
        return result;
    }
    let source_map: BTreeMap<Uuid, i64> =
        source.iter().filter(|(id, _)| differing.contains(&range(id))).copied().collect();
    let target_map: BTreeMap<Uuid, i64> =
        target.iter().filter(|(id, _)| differing.contains(&range(id))).copied().collect();
    for (id, version) in &source_map {
        match target_map.get(id) {
            None => result.missing.push(*id),
            Some(v) if v != version => result.outdated.push(*id),
            Some(_) => {}
        }
    }
    result.extra = target_map.keys().filter(|id| !source_map.contains_key(id)).copied().collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_missing_extra_and_outdated_rows() {
        let ids: Vec<Uuid> = (0..40u128).map(|i| Uuid::from_u128(i << 122 | i)).collect();
        let source: Vec<(Uuid, i64)> = ids[..30].iter().map(|id| (*id, 1)).collect();
        let mut target = source.clone();
        target.remove(3);
        target[10].1 = 0;
        target.push((ids[35], 1));
        target.sort();
        let r = compare("x", &source, &target);
        assert_eq!(r.missing, vec![ids[3]]);
        assert_eq!(r.outdated, vec![ids[11]]);
        assert_eq!(r.extra, vec![ids[35]]);
        assert!(r.ranges_differing >= 1 && r.ranges_differing <= 3);
        assert_eq!(compare("x", &source, &source).ranges_differing, 0);
    }
}
