//! Formation (`all=1,web=2,worker=0`), PORT numbering, and the list of instances.
//!
//! PORT follows foreman: the type at 0-based Procfile position `i`, instance `n`
//! (1-based), gets `base + 100*i + (n-1)`, whether or not the other types run.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::procfile::Procfile;

/// How many instances each type gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    /// The count for types the spec does not name (`all=N`, default 1).
    pub default: usize,
    pub counts: BTreeMap<String, usize>,
}

impl Default for Formation {
    fn default() -> Self {
        Formation {
            default: 1,
            counts: BTreeMap::new(),
        }
    }
}

impl Formation {
    /// Parses a spec such as `all=2,web=1`. Names are checked against the
    /// Procfile by [`Formation::check_names`].
    pub fn parse(spec: &str) -> Result<Self> {
        let error = |reason: String| Error::Formation {
            spec: spec.to_string(),
            reason,
        };
        let mut formation = Formation::default();
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(error("empty item (expected NAME=COUNT)".into()));
            }
            let Some((name, count)) = item.split_once('=') else {
                return Err(error(format!("`{item}` is not NAME=COUNT")));
            };
            let (name, count) = (name.trim(), count.trim());
            if name.is_empty() {
                return Err(error(format!("`{item}` has no process name")));
            }
            let count: usize = count.parse().map_err(|_| {
                error(format!(
                    "count `{count}` for `{name}` is not a whole number of 0 or more"
                ))
            })?;
            if name == "all" {
                formation.default = count;
            } else {
                formation.counts.insert(name.to_string(), count);
            }
        }
        Ok(formation)
    }

    /// Errors if the formation names a type the Procfile lacks.
    pub fn check_names(&self, procfile: &Procfile) -> Result<()> {
        for name in self.counts.keys() {
            if procfile.find(name).is_none() {
                return Err(unknown_process(name, procfile));
            }
        }
        Ok(())
    }

    #[must_use]
    pub fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(self.default)
    }
}

/// Names longer than this get no suggestion: a typo of such a name is rare,
/// and the edit distance costs time in the product of the two lengths.
const MAX_SUGGESTED_LEN: usize = 64;

/// The error for a process name the Procfile does not define, with a suggestion.
#[must_use]
pub fn unknown_process(name: &str, procfile: &Procfile) -> Error {
    Error::UnknownProcess {
        name: name.to_string(),
        hint: suggestion(name, procfile.entries.iter().map(|e| e.name.as_str()))
            .map_or(String::new(), |n| format!(": did you mean `{n}`?")),
        known: procfile.names(),
    }
}

/// The known name `name` is most likely a typo of: within a third of the longer
/// name's length in edits (insert, delete, substitute, swap two neighbours), at
/// least one edit, and fewer edits than the known name has characters.
pub fn suggestion<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    if len > MAX_SUGGESTED_LEN {
        return None;
    }
    known
        .filter_map(|candidate| {
            let candidate_len = candidate.chars().count();
            let allowed = 1.max((candidate_len.max(len) + 1) / 3);
            // The length difference alone is a lower bound on the distance:
            // skip what cannot qualify before paying for the comparison.
            if candidate_len > MAX_SUGGESTED_LEN || candidate_len.abs_diff(len) > allowed {
                return None;
            }
            let distance = strsim::osa_distance(name, candidate);
            (distance <= allowed && distance < candidate_len).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// One instance to run: `web.2` on its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The process type's name.
    pub name: String,
    /// The type's 0-based position in the Procfile (PORT offset and color).
    pub position: usize,
    /// 1-based instance number.
    pub number: usize,
    pub port: u16,
    pub command: String,
}

impl Instance {
    /// `web.1`: the value of `PS` and the name in the output column.
    #[must_use]
    pub fn ps(&self) -> String {
        format!("{}.{}", self.name, self.number)
    }
}

/// How far above the base port instance `number` (1-based) of the type at
/// `position` gets its PORT.
fn port_offset(position: usize, number: usize) -> u64 {
    (100 * position as u64).saturating_add((number as u64).saturating_sub(1))
}

/// The PORT of instance `number` (1-based) of the type at `position`.
pub fn port_for(
    base: u16,
    position: usize,
    number: usize,
    ps: impl FnOnce() -> String,
) -> Result<u16> {
    checked_port(base, position, number, port_offset(position, number), ps)
}

/// Like [`port_for`]; `widest` is the largest offset any instance of the plan
/// gets, so that the error can name a base port that fits them all.
fn checked_port(
    base: u16,
    position: usize,
    number: usize,
    widest: u64,
    ps: impl FnOnce() -> String,
) -> Result<u16> {
    let port = u64::from(base).saturating_add(port_offset(position, number));
    u16::try_from(port).map_err(|_| Error::PortRange {
        ps: ps(),
        port,
        base,
        position,
        number,
        highest_base: u64::from(u16::MAX)
            .checked_sub(widest)
            .and_then(|b| u16::try_from(b).ok()),
    })
}

/// Every instance to start, in Procfile order, for the types in `only` (all
/// types when empty). Errors on unknown names and ports past 65535.
pub fn plan(
    procfile: &Procfile,
    formation: &Formation,
    base: u16,
    only: &[String],
) -> Result<Vec<Instance>> {
    formation.check_names(procfile)?;
    for name in only {
        if procfile.find(name).is_none() {
            return Err(unknown_process(name, procfile));
        }
    }
    let selected = || {
        procfile
            .entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| only.is_empty() || only.contains(&entry.name))
    };
    let widest = selected()
        .filter(|(_, entry)| formation.count(&entry.name) > 0)
        .map(|(position, entry)| port_offset(position, formation.count(&entry.name)))
        .max()
        .unwrap_or(0);
    let mut instances = Vec::new();
    for (position, entry) in selected() {
        for number in 1..=formation.count(&entry.name) {
            let port = checked_port(base, position, number, widest, || {
                format!("{}.{number}", entry.name)
            })?;
            instances.push(Instance {
                name: entry.name.clone(),
                position,
                number,
                port,
                command: entry.command.clone(),
            });
        }
    }
    Ok(instances)
}

/// Two instances (their `PS`) that would get the same PORT.
type Clash = (String, String, u16);

/// Warnings for instances that would share a PORT: one per type that ran out
/// of its block of 100 ports, naming the first clash and what to change.
#[must_use]
pub fn collision_warnings(instances: &[Instance]) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for inst in instances {
        *counts.entry(&inst.name).or_default() += 1;
    }
    // Each clash is blamed on the type whose instance went past its 100 ports.
    let mut clashes: Vec<(Option<String>, Vec<Clash>)> = Vec::new();
    for (a, b, port) in port_collisions(instances) {
        let crowded = [&a, &b]
            .into_iter()
            .filter_map(|ps| ps.rsplit_once('.'))
            .find(|(_, n)| n.parse::<usize>().is_ok_and(|n| n > 100))
            .map(|(name, _)| name.to_string());
        match clashes.iter_mut().find(|(name, _)| *name == crowded) {
            Some((_, pairs)) => pairs.push((a, b, port)),
            None => clashes.push((crowded, vec![(a, b, port)])),
        }
    }
    clashes
        .into_iter()
        .filter_map(|(crowded, pairs)| {
            let (a, b, port) = pairs.first()?;
            let more = match pairs.len() - 1 {
                0 => String::new(),
                1 => " (and 1 more pair)".to_string(),
                n => format!(" (and {n} more pairs)"),
            };
            Some(match crowded {
                Some(name) => format!(
                    "warning: {a} and {b} both get PORT={port}{more}: each type has a block of \
                     100 ports and {name} has {} instances; if they listen on PORT, \
                     use -m {name}=100 or fewer",
                    counts.get(name.as_str()).copied().unwrap_or_default()
                ),
                None => format!("warning: {a} and {b} both get PORT={port}{more}"),
            })
        })
        .collect()
}

/// Pairs of instances that would share a PORT (possible with 100 or more
/// instances of one type). Not an error: many processes ignore PORT.
#[must_use]
pub fn port_collisions(instances: &[Instance]) -> Vec<(String, String, u16)> {
    let mut seen: BTreeMap<u16, &Instance> = BTreeMap::new();
    let mut out = Vec::new();
    for inst in instances {
        if let Some(first) = seen.insert(inst.port, inst) {
            out.push((first.ps(), inst.ps(), inst.port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfile;
    use proptest::prelude::*;
    use std::path::Path;

    fn pf() -> Procfile {
        procfile::parse(Path::new("Procfile"), "web: w\nworker: k\nclock: c\n").expect("procfile")
    }

    fn ports(spec: &str, base: u16, only: &[&str]) -> Vec<(String, u16)> {
        let only: Vec<String> = only.iter().map(|s| (*s).to_string()).collect();
        plan(&pf(), &Formation::parse(spec).expect("spec"), base, &only)
            .expect("plan")
            .iter()
            .map(|i| (i.ps(), i.port))
            .collect()
    }

    #[test]
    fn foreman_port_numbering() {
        assert_eq!(
            ports("all=1,web=2,clock=0", 5000, &[]),
            vec![
                ("web.1".into(), 5000),
                ("web.2".into(), 5001),
                ("worker.1".into(), 5100)
            ]
        );
        assert_eq!(
            ports("all=2", 3000, &["clock"]),
            vec![("clock.1".into(), 3200), ("clock.2".into(), 3201)]
        );
    }

    #[test]
    fn all_sets_the_default_and_names_override_it_in_any_order() {
        let f = Formation::parse("web=3, all=0").expect("spec");
        assert_eq!((f.count("web"), f.count("worker")), (3, 0));
    }

    #[test]
    fn errors_name_the_problem() {
        for (spec, needle) in [
            ("web", "not NAME=COUNT"),
            ("web=x", "`x`"),
            ("web=-1", "`-1`"),
            ("web=1,,worker=2", "empty item"),
            ("=2", "no process name"),
            ("", "empty item"),
        ] {
            let msg = Formation::parse(spec).expect_err(spec).to_string();
            assert!(msg.contains(needle), "{spec}: {msg}");
            assert!(msg.contains(&format!("`{spec}`")), "{spec}: {msg}");
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let f = Formation::parse("wbe=2").expect("spec");
        let msg = plan(&pf(), &f, 5000, &[]).expect_err("unknown").to_string();
        assert!(msg.contains("unknown process `wbe`"), "{msg}");
        assert!(msg.contains("did you mean `web`?"), "{msg}");
        let msg = plan(&pf(), &Formation::default(), 5000, &["zzzzzz".into()])
            .expect_err("unknown")
            .to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
        assert!(msg.contains("web, worker, clock"), "{msg}");
    }

    #[test]
    fn suggestions_are_typos_not_guesses() {
        let pf =
            procfile::parse(Path::new("Procfile"), "web: w\nworker: k\nb: x\n").expect("procfile");
        let hint = |name: &str| match unknown_process(name, &pf) {
            Error::UnknownProcess { hint, .. } => hint,
            other => panic!("{other}"),
        };
        assert_eq!(hint("wbe"), ": did you mean `web`?");
        assert_eq!(hint("worke"), ": did you mean `worker`?");
        assert_eq!(hint("zz"), "");
        assert_eq!(hint("clock"), "");
    }

    #[test]
    fn long_names_are_compared_only_when_short_enough() {
        let long = "a".repeat(10_000);
        let text = format!("{long}: x\nweb: y\n");
        let pf = procfile::parse(Path::new("Procfile"), &text).expect("procfile");
        let typo = format!("{}b", &long[1..]);
        match unknown_process(&typo, &pf) {
            Error::UnknownProcess { hint, .. } => assert_eq!(hint, ""),
            other => panic!("{other}"),
        }
        let near = "x".repeat(MAX_SUGGESTED_LEN);
        let known = [near.as_str(), "web"];
        let typo = format!("{}y", &near[1..]);
        assert_eq!(suggestion(&typo, known.into_iter()), Some(near.as_str()));
    }

    #[test]
    fn ports_past_65535_are_an_error() {
        let msg = plan(&pf(), &Formation::default(), 65400, &[])
            .expect_err("too high")
            .to_string();
        assert!(
            msg.contains("worker.1 would get PORT=65500")
                || msg.contains("clock.1 would get PORT=65600"),
            "{msg}"
        );
        assert!(plan(&pf(), &Formation::default(), 65335, &[]).is_ok());
        assert!(plan(&pf(), &Formation::default(), 65336, &[]).is_err());
    }

    #[test]
    fn collisions_are_found() {
        let p = plan(
            &pf(),
            &Formation::parse("web=101,worker=1").expect("spec"),
            5000,
            &[],
        )
        .expect("plan");
        assert_eq!(
            port_collisions(&p),
            vec![("web.101".into(), "worker.1".into(), 5100)]
        );
    }

    #[test]
    fn collision_warnings_name_the_crowded_type_once() {
        let p = plan(
            &pf(),
            &Formation::parse("web=250,worker=1").expect("spec"),
            5000,
            &[],
        )
        .expect("plan");
        assert_eq!(
            collision_warnings(&p),
            vec![
                "warning: web.101 and worker.1 both get PORT=5100 (and 1 more pair): each type \
                 has a block of 100 ports and web has 250 instances; if they listen on PORT, \
                 use -m web=100 or fewer"
                    .to_string()
            ]
        );
        let p = plan(&pf(), &Formation::default(), 5000, &[]).expect("plan");
        assert!(collision_warnings(&p).is_empty());
    }

    #[test]
    fn a_port_error_names_a_base_that_fits() {
        let err = plan(&pf(), &Formation::default(), 65400, &[]).expect_err("too high");
        let Error::PortRange { highest_base, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(highest_base, Some(65335));
        let f = Formation::parse("web=70000").expect("spec");
        let err = plan(&pf(), &f, 0, &[]).expect_err("too many");
        assert!(err.to_string().contains("no base port fits"), "{err}");
    }

    proptest! {
        #[test]
        fn never_panics(spec in "\\PC*") {
            let _ = Formation::parse(&spec);
        }

        #[test]
        fn counts_round_trip(counts in proptest::collection::btree_map("[a-z]{1,6}", 0usize..1000, 1..6)) {
            let spec: Vec<String> = counts.iter().map(|(n, c)| format!("{n}={c}")).collect();
            let f = Formation::parse(&spec.join(",")).expect("valid spec");
            let expected: BTreeMap<String, usize> = counts.into_iter().filter(|(n, _)| n != "all").collect();
            prop_assert_eq!(f.counts, expected);
        }
    }
}
