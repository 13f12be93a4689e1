//! Join groups: in a flat join over both sides (base tables crossed by commas or joined by
//! `INNER JOIN … ON`), the relations one side holds, joined there by the WHERE and ON terms that
//! read only them, so the join's result crosses instead of each relation (TPC-H's shape:
//! `FROM customer, orders, lineitem WHERE …`).
//!
//! The group becomes a fragment (see `pond-planner`'s `fragments.rs`): `SELECT <the group's
//! columns the query names> FROM <its relations, as written> WHERE <its own terms>`. Reading its
//! result changes the user's text in three kinds of places, none of which moves a comma or a
//! JOIN: the group's first relation becomes `(SELECT * FROM <result>)`, its others a one-row
//! relation (`(SELECT 1 AS __pond_one)`, which crosses nothing), and its own terms `TRUE` (they
//! ran inside the fragment). For inner joins an ON term filters like a WHERE term, and the
//! result sits where the group's first relation was, left of every term that reads it.
//!
//! Invariants: a group is proposed only when that rewrite keeps every name the query uses:
//! - no `*` anywhere (it would list the one-row relations' columns);
//! - outside the moved terms, no column reference is qualified by a group relation's alias or
//!   name (it would name a relation that is gone);
//! - the group's columns the query names outside the moved terms are unique among the group's
//!   relations, and are its result's columns;
//! - every column a moved term reads belongs to the group, found by qualifier or by the
//!   relations' schemas (a reference to a column of no relation of this FROM is the query
//!   around it: such a term stays).

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::SchemaRef;
use pond_duckdb::engine::quote_ident;
use pond_proto::dual::Side;

use super::DualSession;
use super::routing::Rel;
use crate::ClientError;
use crate::analyze::{FlatJoin, QueryShape, TableRef};

/// A join group as a fragment, before placeholders and offsets are known.
pub(super) struct JoinGroup {
    pub side: Side,
    /// Indexes into the statement's relations.
    pub rels: Vec<usize>,
    /// The columns the group's result keeps, quoted.
    columns: Vec<String>,
    /// Each relation's index and the alias the group's query gives it, quoted.
    items: Vec<(usize, String)>,
    /// The WHERE terms that run inside the group, as written.
    terms: Vec<String>,
    /// Edits of the user's text that read the group's result, `{result}` standing for it.
    pub edits: Vec<((usize, usize), String)>,
}

impl JoinGroup {
    /// The group's query, each relation read by `name(index)`.
    pub fn query(&self, name: impl Fn(usize) -> String) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|(i, alias)| format!("{} AS {alias}", name(*i)))
            .collect();
        format!(
            "SELECT {} FROM {} WHERE {}",
            self.columns.join(", "),
            items.join(", "),
            self.terms.join(" AND ")
        )
    }
}

impl DualSession {
    /// Learns the schemas of the cloud relations that flat joins read, once per session.
    pub(super) async fn learn_cloud_schemas(&mut self, shape: &QueryShape, rels: &[Rel]) -> Result<(), ClientError> {
        if shape.star || shape.flat_joins.is_empty() || !self.split_subqueries {
            return Ok(());
        }
        for join in &shape.flat_joins {
            for span in &join.tables {
                let Some(r) = rels.iter().find(|r| r.span == *span && r.side == Side::Remote) else {
                    continue;
                };
                if self.cloud_schemas.contains_key(&r.source) {
                    continue;
                }
                let sql = format!("SELECT * FROM {} LIMIT 0", r.source);
                // A relation that cannot be read fails the query itself, in DuckDB's words.
                let cloud = self.cloud_client("a query on cloud data")?;
                if let Ok((schema, _)) = cloud.query_with_schema(&sql).await {
                    self.cloud_schemas.insert(r.source.clone(), schema);
                }
            }
        }
        Ok(())
    }

    /// The join groups of a statement's flat joins (see the module's invariants).
    pub(super) fn join_groups(&self, text: &str, shape: &QueryShape, rels: &[Rel]) -> Vec<JoinGroup> {
        if shape.star || !self.split_subqueries {
            return Vec::new();
        }
        let mut out = Vec::new();
        for join in &shape.flat_joins {
            // The join's relations, with their table references and schemas, read once for
            // both sides' groups.
            let Some(members) = self.members(shape, rels, join) else {
                continue;
            };
            for side in [Side::Local, Side::Remote] {
                if let Some(group) = join_group(text, shape, rels, join, &members, side, out.len()) {
                    out.push(group);
                }
            }
        }
        out
    }

    fn members<'s>(&self, shape: &'s QueryShape, rels: &[Rel], join: &FlatJoin) -> Option<Vec<Member<'s>>> {
        join.tables
            .iter()
            .map(|span| {
                let i = rels.iter().position(|r| r.span == *span)?;
                let table = shape.tables.iter().find(|t| t.span == *span)?;
                Some((i, table, self.schema_of(&rels[i])?))
            })
            .collect()
    }

    fn schema_of(&self, r: &Rel) -> Option<SchemaRef> {
        match r.side {
            Side::Remote => self.cloud_schemas.get(&r.source).cloned(),
            _ => self.local.describe(&format!("SELECT * FROM {}", r.source)).ok(),
        }
    }
}

/// A relation of a flat join: its index among the statement's relations, its table reference
/// and its schema.
type Member<'s> = (usize, &'s TableRef, SchemaRef);

/// The group of `side`'s relations in `join`, if the rewrite keeps every name the query uses.
fn join_group(
    text: &str,
    shape: &QueryShape,
    rels: &[Rel],
    join: &FlatJoin,
    members: &[Member<'_>],
    side: Side,
    k: usize,
) -> Option<JoinGroup> {
    let in_group = |m: &Member<'_>| rels[m.0].side == side;
    let group: Vec<&Member<'_>> = members.iter().filter(|m| in_group(m)).collect();
    if group.len() < 2 || group.len() == members.len() {
        return None;
    }
    let name_of = |t: &TableRef| {
        if t.alias.is_empty() {
            t.table.clone()
        } else {
            t.alias.clone()
        }
        .to_lowercase()
    };
    let has = |schema: &SchemaRef, column: &str| schema.fields().iter().any(|f| f.name().eq_ignore_ascii_case(column));
    // The member a column reference reads, if it reads one of this FROM.
    let owner = |qualifier: &str, column: &str| -> Option<usize> {
        if !qualifier.is_empty() {
            return members.iter().position(|(_, t, _)| name_of(t) == qualifier);
        }
        let mut found = members.iter().enumerate().filter(|(_, (_, _, s))| has(s, column));
        let first = found.next()?;
        found.next().is_none().then_some(first.0)
    };
    let moved: Vec<usize> = (0..join.conjuncts.len())
        .filter(|c| {
            let c = &join.conjuncts[*c];
            !c.has_subquery
                && !c.columns.is_empty()
                && c.columns
                    .iter()
                    .all(|(q, name)| owner(q, name).is_some_and(|m| in_group(&members[m])))
        })
        .collect();
    // The group must be joined: some moved term reads two of its relations.
    let joins_two = moved.iter().any(|c| {
        let owners: BTreeSet<usize> = join.conjuncts[*c]
            .columns
            .iter()
            .filter_map(|(q, name)| owner(q, name))
            .collect();
        owners.len() >= 2
    });
    if !joins_two {
        return None;
    }
    // Uses of names inside the moved terms, which run inside the group.
    let mut moved_columns: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut moved_qualifiers: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &moved {
        for (q, name) in &join.conjuncts[*c].columns {
            *moved_columns.entry((q, name)).or_default() += 1;
            if !q.is_empty() {
                *moved_qualifiers.entry(q).or_default() += 1;
            }
        }
    }
    // Outside its moved terms, nothing names a group relation: it is gone from the FROM.
    // (A relation's name used as a column, `SELECT c FROM customer c`, reads its whole row.)
    let named_outside = |t: &TableRef| {
        let name = name_of(t);
        shape.qualifier_uses.get(&name).copied().unwrap_or(0)
            > moved_qualifiers.get(name.as_str()).copied().unwrap_or(0)
            || shape.column_uses.contains_key(&(String::new(), name))
    };
    if group.iter().any(|(_, t, _)| named_outside(t)) {
        return None;
    }
    // An unqualified use outside the moved terms may read the group's column of that name.
    let read_outside = |name: &str| {
        let uses = shape
            .column_uses
            .get(&(String::new(), name.to_string()))
            .copied()
            .unwrap_or(0);
        uses > moved_columns.get(&("", name)).copied().unwrap_or(0)
    };
    // The group's columns the query reads outside its moved terms, each in one of its
    // relations only.
    let mut columns = Vec::new();
    let mut seen = BTreeSet::new();
    for (_, _, schema) in &group {
        for f in schema.fields() {
            let name = f.name().to_lowercase();
            if read_outside(&name) {
                if !seen.insert(name) {
                    return None;
                }
                columns.push(quote_ident(f.name()));
            }
        }
    }
    if columns.is_empty() {
        columns.push(quote_ident(group[0].2.fields().first()?.name()));
    }
    let items: Vec<(usize, String)> = group
        .iter()
        .map(|(i, t, _)| (*i, quote_ident(if t.alias.is_empty() { &t.table } else { &t.alias })))
        .collect();
    let terms: Vec<String> = moved
        .iter()
        .map(|c| {
            let (a, b) = join.conjuncts[*c].span;
            text[a..b].to_string()
        })
        .collect();
    let mut edits = Vec::new();
    for (j, (_, t, _)) in group.iter().enumerate() {
        let alias = |name: String| {
            if t.alias.is_empty() {
                format!(" AS {}", quote_ident(&name))
            } else {
                String::new()
            }
        };
        let replacement = if j == 0 {
            format!("(SELECT * FROM {{result}}){}", alias(format!("__pond_join_{k}")))
        } else {
            format!("(SELECT 1 AS __pond_one){}", alias(format!("__pond_one_{k}_{j}")))
        };
        edits.push((t.span, replacement));
    }
    for c in &moved {
        edits.push((join.conjuncts[*c].span, "TRUE".to_string()));
    }
    Some(JoinGroup {
        side,
        rels: group.iter().map(|(i, _, _)| *i).collect(),
        columns,
        items,
        terms,
        edits,
    })
}
