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
//! When the join's SELECT aggregates, a group may also aggregate its rows before they cross
//! (partial aggregation): `SELECT <the columns read outside>, <partials> FROM … WHERE …
//! GROUP BY <those columns>`, each aggregate that reads only the group finished where the query
//! runs (`sum(x)` → `sum(p)`, `count(…)` → the sum of the counts). Such a group may be one
//! relation: a cloud table summed per join key before it meets a local one. Every
//! row the join pairs with a group's rows pairs alike with each of them (it reads only the
//! columns grouped on), so each partial is repeated exactly as its rows were.
//!
//! Invariants: a group is proposed only when that rewrite keeps every name the query uses:
//! - no `*` anywhere (it would list the one-row relations' columns);
//! - outside the moved terms, no column reference is qualified by a group relation's alias or
//!   name (it would name a relation that is gone), except the first relation's, whose name the
//!   result takes: references to its columns by that name read the result's columns;
//! - the group's columns the query names outside the moved terms are unique among the group's
//!   relations, and are its result's columns;
//! - every column a moved term reads belongs to the group, found by qualifier or by the
//!   relations' schemas (a reference to a column of no relation of this FROM is the query
//!   around it: such a term stays); a term with a subquery moves when the subquery reads only
//!   base tables of the group's side (its relations then run inside the fragment too) and the
//!   term reads the group and no other relation of this FROM (TPC-H Q18's `o_orderkey IN
//!   (SELECT l_orderkey … HAVING …)`);
//! - every ON term's names bind to the same relations among the tables its join sees (and the
//!   items before a comma) as among all of this FROM's, or to none of them anywhere (the
//!   group's WHERE and the rewritten text see every relation).
//!
//! and a group aggregates early only when every call after the join is understood: a scalar
//! function, a decomposable aggregate (`sum`, `count`, `min`, `max`, plain) of the group's
//! columns alone, or an aggregate that duplicates cannot change (`min`, `max`, any `DISTINCT`);
//! a macro or an unknown name (which could hide an aggregate) keeps the group's rows whole.

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::SchemaRef;
use pond_duckdb::engine::quote_ident;
use pond_proto::dual::Side;

use super::DualSession;
use super::plan::inside;
use super::routing::{Rel, with_alias};
use crate::ClientError;
use crate::analyze::{Call, FlatJoin, QueryShape, TableRef};

/// What a function name is to DuckDB, for the calls that run over a group's aggregated rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FunctionKind {
    Scalar,
    Aggregate,
    /// A macro, a table function, or a name with several kinds.
    Other,
}

/// The aggregates a group computes in part: each one's result is the same aggregate (or a sum)
/// of its partials.
/// (`avg` is not among them: DuckDB divides a decimal's exact sum once, in extended precision,
/// which no quotient of partials reproduces to the last bit.)
const DECOMPOSABLE: &[&str] = &["sum", "count", "count_star", "min", "max"];

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
    terms: Vec<Term>,
    /// Partial aggregates: each expression and the name of its column; the group's rows are
    /// then grouped by `columns`.
    partials: Vec<(String, String)>,
    /// Edits of the user's text that read the group's result, `{result}` standing for it.
    pub edits: Vec<((usize, usize), String)>,
}

/// A term that runs inside a group: its text, and the relations its subquery reads (their
/// spans in that text, their indexes and aliases), read there by the name the plan gives them.
struct Term {
    text: String,
    rels: Vec<((usize, usize), usize, Option<String>)>,
}

impl Term {
    fn render(&self, name: &impl Fn(usize) -> String) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut at = 0;
        for ((start, end), i, alias) in &self.rels {
            out.push_str(&self.text[at..*start]);
            out.push_str(&with_alias(&name(*i), alias));
            at = *end;
        }
        out.push_str(&self.text[at..]);
        out
    }
}

impl JoinGroup {
    /// The group's query, each relation read by `name(index)`.
    pub fn query(&self, name: impl Fn(usize) -> String) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|(i, alias)| format!("{} AS {alias}", name(*i)))
            .collect();
        let partials = self
            .partials
            .iter()
            .map(|(expression, name)| format!("{expression} AS {name}"));
        let select: Vec<String> = self.columns.iter().cloned().chain(partials).collect();
        let mut query = format!("SELECT {} FROM {}", select.join(", "), items.join(", "));
        if !self.terms.is_empty() {
            let terms: Vec<String> = self.terms.iter().map(|t| t.render(&name)).collect();
            query += &format!(" WHERE {}", terms.join(" AND "));
        }
        if !self.partials.is_empty() {
            if self.columns.is_empty() {
                // Aggregated whole, an empty group is still one row: no row must cross, as none
                // would have joined.
                query += " HAVING count(*) > 0";
            } else {
                query += &format!(" GROUP BY {}", self.columns.join(", "));
            }
        }
        query
    }

    /// The columns of the group's result that only the edited text names (its partial
    /// aggregates): the planner must keep them where it cannot see what reads them.
    pub fn introduced_columns(&self) -> impl Iterator<Item = &str> {
        self.partials.iter().map(|(_, name)| name.as_str())
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
    pub(super) fn join_groups(&mut self, text: &str, shape: &QueryShape, rels: &[Rel]) -> Vec<JoinGroup> {
        if shape.star || !self.split_subqueries {
            return Vec::new();
        }
        let functions = if shape
            .flat_joins
            .iter()
            .any(|j| j.calls.as_ref().is_some_and(|c| !c.is_empty()))
        {
            self.function_kinds()
        } else {
            None
        };
        let functions = functions.as_deref();
        let mut out = Vec::new();
        for join in &shape.flat_joins {
            // The join's relations, with their table references and schemas, read once for
            // both sides' groups.
            let Some(members) = self.members(shape, rels, join) else {
                continue;
            };
            if !on_terms_bind_alike(join, &members) {
                continue;
            }
            // The types DuckDB gives the SELECT's aggregates, found on stand-ins of no rows.
            let local = &self.local;
            let types = |sql: &str| -> Option<Vec<String>> {
                let (_, batches) = local.query(sql).ok()?;
                let row = batches.iter().find(|b| b.num_rows() > 0)?;
                row.columns()
                    .iter()
                    .map(|c| {
                        let c = c.as_any().downcast_ref::<arrow::array::StringArray>()?;
                        Some(c.value(0).to_string())
                    })
                    .collect()
            };
            for side in [Side::Local, Side::Remote] {
                let on_side = |m: &Member<'_>| rels[m.0].side == side;
                let group = |k: usize, aggregating: Option<Aggregating<'_>>| {
                    join_group(text, shape, rels, join, &members, side, &on_side, k, aggregating)
                };
                let partial = functions.and_then(|functions| {
                    let aggregating = Aggregating {
                        functions,
                        types: &types,
                    };
                    group(out.len(), Some(aggregating))
                });
                // Forced splits test the aggregated form wherever there is one.
                if partial.is_none() || !self.prefer_fragments {
                    out.extend(group(out.len(), None));
                }
                out.extend(partial);
                // A side whose relations are not all joined to one another (a fact table's
                // dimensions, one of them snowflaked: TPC-DS Q18's customer, its demographics and
                // address) also offers each joined part alone; the planner takes one or the other.
                for part in joined_parts(join, &members, rels, side) {
                    out.extend(join_group_of(text, shape, rels, join, &members, &part, out.len()));
                }
            }
        }
        out
    }

    /// The local DuckDB's function names and their kinds, read once until a statement that may
    /// create a macro runs; `None` if they cannot be read (groups then keep their rows whole).
    fn function_kinds(&mut self) -> Option<std::sync::Arc<BTreeMap<String, FunctionKind>>> {
        if self.function_kinds.is_none() {
            let sql = "SELECT lower(function_name), CASE WHEN bool_and(function_type = 'scalar') THEN 's' \
                       WHEN bool_and(function_type = 'aggregate') THEN 'a' ELSE 'o' END \
                       FROM duckdb_functions() GROUP BY 1";
            let (_, batches) = self
                .local
                .query(sql)
                .inspect_err(|e| tracing::debug!(error = %e, "could not list DuckDB's functions"))
                .ok()?;
            let mut kinds = BTreeMap::new();
            for b in &batches {
                let names = b.column(0).as_any().downcast_ref::<arrow::array::StringArray>()?;
                let codes = b.column(1).as_any().downcast_ref::<arrow::array::StringArray>()?;
                for (name, code) in names.iter().zip(codes.iter()) {
                    let kind = match code {
                        Some("s") => FunctionKind::Scalar,
                        Some("a") => FunctionKind::Aggregate,
                        _ => FunctionKind::Other,
                    };
                    kinds.insert(name?.to_string(), kind);
                }
            }
            self.function_kinds = Some(std::sync::Arc::new(kinds));
        }
        self.function_kinds.clone()
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

/// What a group needs to aggregate early: the kinds of DuckDB's functions, and the types
/// DuckDB gives a SELECT's columns (`typeof` of each, one row), run locally.
struct Aggregating<'a> {
    functions: &'a BTreeMap<String, FunctionKind>,
    types: &'a dyn Fn(&str) -> Option<Vec<String>>,
}

/// A relation of a flat join: its index among the statement's relations, its table reference
/// and its schema.
type Member<'s> = (usize, &'s TableRef, SchemaRef);

/// The name a query reads a table reference by, lower-cased.
fn name_of(t: &TableRef) -> String {
    if t.alias.is_empty() { &t.table } else { &t.alias }.to_lowercase()
}

fn has(schema: &SchemaRef, column: &str) -> bool {
    schema.fields().iter().any(|f| f.name().eq_ignore_ascii_case(column))
}

/// The member a column reference reads among the members `within` (a range of them), if it
/// reads one of them.
fn owner_within(members: &[Member<'_>], within: (usize, usize), qualifier: &str, column: &str) -> Option<usize> {
    let mut seen = members.iter().enumerate().take(within.1).skip(within.0);
    if !qualifier.is_empty() {
        return seen.find(|(_, (_, t, _))| name_of(t) == qualifier).map(|(i, _)| i);
    }
    let mut found = seen.filter(|(_, (_, _, s))| has(s, column));
    let first = found.next()?;
    found.next().is_none().then_some(first.0)
}

/// Whether every name of `join`'s ON terms binds as it would in a WHERE. An ON term binds its
/// names among the tables its join joins (then among the FROM's items before a comma, as a
/// lateral join, then in the queries around), while a group's WHERE and the rewritten text see
/// every relation. A name binds alike when it reads the same member in both, or no member
/// anywhere (then the query around binds it in both); both readings of the scope, with and
/// without the items before it, must agree. When one does not, the join forms no group.
fn on_terms_bind_alike(join: &FlatJoin, members: &[Member<'_>]) -> bool {
    let everywhere = (0, members.len());
    let binds_in = |scope: (usize, usize), q: &str, name: &str| match owner_within(members, scope, q, name) {
        Some(m) => owner_within(members, everywhere, q, name) == Some(m),
        None if q.is_empty() => !members.iter().any(|m| has(&m.2, name)),
        None => owner_within(members, everywhere, q, name).is_none(),
    };
    join.conjuncts.iter().all(|c| {
        c.scope.is_none_or(|(first, end)| {
            c.columns
                .iter()
                .all(|(q, name)| binds_in((first, end), q, name) && binds_in((0, end), q, name))
        })
    })
}

/// The parts of `side`'s relations in `join` that its own terms join to one another (by relation
/// index), when there are several: each part of two or more relations that is not the whole
/// side. Only terms without a subquery join a part.
fn joined_parts(join: &FlatJoin, members: &[Member<'_>], rels: &[Rel], side: Side) -> Vec<BTreeSet<usize>> {
    let on_side: Vec<usize> = (0..members.len())
        .filter(|&m| rels[members[m].0].side == side)
        .collect();
    // Each member's part, as the smallest member index in it (a union-find over a few members).
    let mut part: Vec<usize> = (0..members.len()).collect();
    fn root(part: &mut [usize], mut m: usize) -> usize {
        while part[m] != m {
            m = part[m];
        }
        m
    }
    let everywhere = (0, members.len());
    for c in join.conjuncts.iter().filter(|c| !c.has_subquery) {
        let owners: Option<BTreeSet<usize>> = c
            .columns
            .iter()
            .map(|(q, name)| owner_within(members, everywhere, q, name).filter(|m| on_side.contains(m)))
            .collect();
        let Some(owners) = owners.filter(|o| o.len() >= 2) else {
            continue;
        };
        let first = owners.iter().map(|&m| root(&mut part, m)).min().unwrap_or(0);
        for m in owners {
            let r = root(&mut part, m);
            part[r] = first;
        }
    }
    let mut parts: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for &m in &on_side {
        let r = root(&mut part, m);
        parts.entry(r).or_default().insert(members[m].0);
    }
    if parts.len() < 2 {
        return Vec::new();
    }
    parts.into_values().filter(|p| p.len() >= 2).collect()
}

/// The group of the relations `part` (relation indices) holds, joined by their own terms: one
/// joined part of a side (without aggregating).
fn join_group_of(
    text: &str,
    shape: &QueryShape,
    rels: &[Rel],
    join: &FlatJoin,
    members: &[Member<'_>],
    part: &BTreeSet<usize>,
    k: usize,
) -> Option<JoinGroup> {
    let side = rels[*part.first()?].side;
    join_group(
        text,
        shape,
        rels,
        join,
        members,
        side,
        &|m| part.contains(&m.0),
        k,
        None,
    )
}

/// The group of the members `in_group` takes, all on `side` (the side's every relation, or one
/// joined part of them), if the rewrite keeps every name the query uses (see the module's
/// invariants); with `aggregating`, the group that aggregates its rows early, if the SELECT
/// allows it.
#[allow(clippy::too_many_arguments)]
fn join_group(
    text: &str,
    shape: &QueryShape,
    rels: &[Rel],
    join: &FlatJoin,
    members: &[Member<'_>],
    side: Side,
    in_group: &dyn Fn(&Member<'_>) -> bool,
    k: usize,
    aggregating: Option<Aggregating<'_>>,
) -> Option<JoinGroup> {
    let group: Vec<&Member<'_>> = members.iter().filter(|m| in_group(m)).collect();
    // One relation alone gains only by aggregating.
    let fewest = if aggregating.is_some() { 1 } else { 2 };
    if group.len() < fewest || group.len() == members.len() {
        return None;
    }
    // The member a column reference reads, if it reads one of this FROM.
    let owner = |qualifier: &str, column: &str| owner_within(members, (0, members.len()), qualifier, column);
    // The relations each term's subqueries read, when every one is a base table of the
    // statement on the group's side (no CTE, no table function); empty for a term without one.
    let subquery_rels = |span: (usize, usize)| -> Option<Vec<usize>> {
        let mut within: Vec<usize> = (0..rels.len()).filter(|i| inside(rels[*i].span, span)).collect();
        within.sort_by_key(|i| rels[*i].span);
        let tables = shape.tables.iter().filter(|t| inside(t.span, span)).count();
        let located = within
            .iter()
            .all(|i| shape.tables.iter().any(|t| t.span == rels[*i].span));
        (!within.is_empty() && within.len() == tables && located && within.iter().all(|i| rels[*i].side == side))
            .then_some(within)
    };
    let term_rels: Vec<Option<Vec<usize>>> = join
        .conjuncts
        .iter()
        .map(|c| {
            if c.has_subquery {
                subquery_rels(c.span)
            } else {
                Some(Vec::new())
            }
        })
        .collect();
    let in_group_column = |(q, name): &(String, String)| owner(q, name).is_some_and(|m| in_group(&members[m]));
    let moved: Vec<usize> = (0..join.conjuncts.len())
        .filter(|&i| {
            let c = &join.conjuncts[i];
            if c.columns.is_empty() {
                return false;
            }
            if !c.has_subquery {
                return c.columns.iter().all(in_group_column);
            }
            // A subquery's own columns bind to its own tables first, in the query and in the
            // group alike; a column no relation of this FROM outside the group may name (by
            // qualifier, or by a column of that name, ambiguous or not) binds the same way in
            // both.
            let outside_group = |(q, name): &(String, String)| {
                if q.is_empty() {
                    members.iter().any(|m| !in_group(m) && has(&m.2, name))
                } else {
                    owner(q, name).is_some_and(|m| !in_group(&members[m]))
                }
            };
            term_rels[i].is_some() && c.columns.iter().any(in_group_column) && !c.columns.iter().any(outside_group)
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
    if !joins_two && group.len() > 1 {
        return None;
    }
    let reads_group_only = |columns: &[(String, String)]| {
        columns
            .iter()
            .all(|(q, name)| owner(q, name).is_some_and(|m| in_group(&members[m])))
    };
    let pushed = match &aggregating {
        Some(a) => {
            // An aggregate inside a subquery whose columns are all this SELECT's belongs to it,
            // unseen among its calls: any such read of the group's columns keeps it whole.
            if join
                .subquery_columns
                .iter()
                .any(|(q, name)| owner(q, name).is_some_and(|m| in_group(&members[m])))
            {
                return None;
            }
            pushed_aggregates(join.calls.as_ref()?, a.functions, reads_group_only)?
        }
        None => Vec::new(),
    };
    // Uses of names inside the moved terms and the pushed aggregates, which run inside the group.
    let mut moved_columns: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut moved_qualifiers: BTreeMap<&str, usize> = BTreeMap::new();
    let moved_uses = moved
        .iter()
        .flat_map(|c| &join.conjuncts[*c].columns)
        .chain(pushed.iter().flat_map(|c| &c.columns));
    for (q, name) in moved_uses {
        *moved_columns.entry((q, name)).or_default() += 1;
        if !q.is_empty() {
            *moved_qualifiers.entry(q).or_default() += 1;
        }
    }
    // Outside its moved terms, nothing names a group relation but the first, whose name the
    // result takes (the others are gone from the FROM); nothing names the first but its
    // columns the result keeps. (A relation's name used as a column, `SELECT c FROM customer
    // c`, reads its whole row.)
    let outside = |counted: Option<&usize>, moved: Option<&usize>| {
        counted.copied().unwrap_or(0) - moved.copied().unwrap_or(0).min(counted.copied().unwrap_or(0))
    };
    let named_outside = |t: &TableRef| {
        let name = name_of(t);
        outside(shape.qualifier_uses.get(&name), moved_qualifiers.get(name.as_str())) > 0
            || shape.column_uses.contains_key(&(String::new(), name))
    };
    if group.iter().skip(1).any(|(_, t, _)| named_outside(t)) {
        return None;
    }
    let (_, first, first_schema) = group[0];
    let first_name = name_of(first);
    if shape.column_uses.contains_key(&(String::new(), first_name.clone())) {
        return None;
    }
    // Uses of the first relation's columns by its name, outside the moved terms.
    let qualified_outside = |column: &str| {
        outside(
            shape.column_uses.get(&(first_name.clone(), column.to_string())),
            moved_columns.get(&(first_name.as_str(), column)),
        )
    };
    let first_named = outside(
        shape.qualifier_uses.get(&first_name),
        moved_qualifiers.get(first_name.as_str()),
    );
    let first_columns_named: usize = first_schema
        .fields()
        .iter()
        .map(|f| qualified_outside(&f.name().to_lowercase()))
        .sum();
    // Any other use of its name (a struct path, a catalog- or schema-qualified column) would
    // not find the result.
    let qualified_by_path = [&first.catalog, &first.schema]
        .iter()
        .any(|part| !part.is_empty() && shape.qualifier_uses.contains_key(&part.to_lowercase()));
    if first_named != first_columns_named || (first_named > 0 && qualified_by_path) {
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
    // Each is qualified by its relation's name in the group's query: another of its relations
    // may have a column of that name too.
    let items: Vec<(usize, String)> = group
        .iter()
        .map(|(i, t, _)| (*i, quote_ident(if t.alias.is_empty() { &t.table } else { &t.alias })))
        .collect();
    let mut columns = Vec::new();
    let mut seen = BTreeSet::new();
    for (j, (_, _, schema)) in group.iter().enumerate() {
        for f in schema.fields() {
            let name = f.name().to_lowercase();
            if read_outside(&name) || (j == 0 && qualified_outside(&name) > 0) {
                if !seen.insert(name) {
                    return None;
                }
                columns.push(format!("{}.{}", items[j].1, quote_ident(f.name())));
            }
        }
    }
    if columns.is_empty() && pushed.is_empty() {
        columns.push(format!(
            "{}.{}",
            items[0].1,
            quote_ident(group[0].2.fields().first()?.name())
        ));
    }
    let mut inner_rels = Vec::new();
    let terms: Vec<Term> = moved
        .iter()
        .map(|c| {
            let (a, b) = join.conjuncts[*c].span;
            let within = term_rels[*c].clone().unwrap_or_default();
            inner_rels.extend(within.iter().copied());
            Term {
                text: text[a..b].to_string(),
                rels: within
                    .iter()
                    .map(|i| {
                        let r = &rels[*i];
                        ((r.span.0 - a, r.span.1 - a), *i, r.alias.clone())
                    })
                    .collect(),
            }
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
            // Under the first relation's name, which the query's references to it keep using.
            format!("(SELECT * FROM {{result}}){}", alias(t.table.clone()))
        } else {
            format!("(SELECT 1 AS __pond_one){}", alias(format!("__pond_one_{k}_{j}")))
        };
        edits.push((t.span, replacement));
    }
    for c in &moved {
        edits.push((join.conjuncts[*c].span, "TRUE".to_string()));
    }
    let mut partials = Vec::new();
    // The type each pushed aggregate has in DuckDB: a sum of integers is a HUGEINT, which
    // crosses as Arrow's decimal128(38, 0) and would be finished as a DECIMAL (`//`, `%` and
    // integer-only functions treat those otherwise).
    let types = match &aggregating {
        Some(a) if !pushed.is_empty() => {
            let calls: Vec<String> = pushed
                .iter()
                .filter_map(|c| c.span)
                .map(|(a, b)| format!("typeof({})", &text[a..b]))
                .collect();
            let stand_ins = group
                .iter()
                .zip(&items)
                .map(|((_, _, schema), (_, alias))| {
                    let columns = schema
                        .fields()
                        .iter()
                        .map(|f| {
                            let t = pond_duckdb::engine::duckdb_type_for_arrow(f.data_type()).ok()?;
                            Some(format!("CAST(NULL AS {t}) AS {}", quote_ident(f.name())))
                        })
                        .collect::<Option<Vec<String>>>()?;
                    Some(format!("(SELECT {}) AS {alias}", columns.join(", ")))
                })
                .collect::<Option<Vec<String>>>()?;
            let types = (a.types)(&format!("SELECT {} FROM {}", calls.join(", "), stand_ins.join(", ")))?;
            (types.len() == pushed.len()).then_some(types)?
        }
        _ => Vec::new(),
    };
    for (i, call) in pushed.iter().enumerate() {
        let span = call.span?;
        let partial = format!("__pond_partial_{k}_{i}");
        partials.push((text[span.0..span.1].to_string(), partial.clone()));
        let finished = match call.name.as_str() {
            "sum" if types[i] == "HUGEINT" => format!("CAST(sum({partial}) AS HUGEINT)"),
            "sum" | "min" | "max" => format!("{}({partial})", call.name),
            "count" | "count_star" => format!("CAST(coalesce(sum({partial}), 0) AS BIGINT)"),
            _ => return None,
        };
        edits.push((span, finished));
    }
    Some(JoinGroup {
        side,
        rels: group.iter().map(|(i, _, _)| *i).chain(inner_rels).collect(),
        columns,
        items,
        terms,
        partials,
        edits,
    })
}

/// The SELECT's aggregates a group computes in part, if every call after the join is
/// understood (see the module's invariants) and one aggregate at least reads only the group.
fn pushed_aggregates<'j>(
    calls: &'j [Call],
    functions: &BTreeMap<String, FunctionKind>,
    reads_group_only: impl Fn(&[(String, String)]) -> bool,
) -> Option<Vec<&'j Call>> {
    let mut pushed = Vec::new();
    for call in calls.iter().filter(|c| !c.operator) {
        match functions.get(&call.name) {
            Some(FunctionKind::Scalar) => continue,
            Some(FunctionKind::Aggregate) => {}
            _ => return None,
        }
        // `max(x, 3)` is the top three, duplicates included: no maximum.
        let one_argument = call.arguments == usize::from(call.name != "count_star");
        if call.plain
            && !call.distinct
            && one_argument
            && call.span.is_some()
            && DECOMPOSABLE.contains(&call.name.as_str())
            && reads_group_only(&call.columns)
        {
            pushed.push(call);
        } else if !(call.distinct || (matches!(call.name.as_str(), "min" | "max") && one_argument)) {
            return None;
        }
    }
    (!pushed.is_empty()).then_some(pushed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::analyze::{Conjunct, FlatJoin, TableRef};

    fn table(name: &str, alias: &str) -> TableRef {
        TableRef {
            catalog: String::new(),
            schema: String::new(),
            table: name.into(),
            alias: alias.into(),
            span: (0, 0),
        }
    }

    fn schema(columns: &[&str]) -> SchemaRef {
        Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true))
                .collect::<Vec<_>>(),
        ))
    }

    /// One ON term over `columns`, its join joining the tables `scope`.
    fn join_on(columns: &[(&str, &str)], scope: (usize, usize)) -> FlatJoin {
        FlatJoin {
            tables: Vec::new(),
            conjuncts: vec![Conjunct {
                span: (0, 0),
                columns: columns.iter().map(|(q, n)| (q.to_string(), n.to_string())).collect(),
                has_subquery: false,
                scope: Some(scope),
            }],
            calls: None,
            subquery_columns: Vec::new(),
        }
    }

    /// `FROM a, b JOIN c ON … , d`: a(x, y), b(k), c(k, z), d(z, w); the ON term's join joins
    /// b and c (members 1..3).
    #[test]
    fn an_on_term_forms_a_group_only_where_its_names_bind_as_in_a_where() {
        let tables = [table("a", ""), table("b", ""), table("c", ""), table("d", "")];
        let schemas = [
            schema(&["x", "y"]),
            schema(&["k"]),
            schema(&["k", "z"]),
            schema(&["z", "w"]),
        ];
        let members: Vec<Member<'_>> = (0..4).map(|i| (i, &tables[i], Arc::clone(&schemas[i]))).collect();
        let alike = |columns: &[(&str, &str)]| on_terms_bind_alike(&join_on(columns, (1, 3)), &members);
        // Qualified names of the join's own tables, and a name one of them alone has.
        assert!(alike(&[("b", "k"), ("c", "k")]));
        assert!(
            !alike(&[("", "z")]),
            "z is c's in the join, but d has it too in a WHERE"
        );
        // A name of an item before the comma: the join's tables alone leave it to the query
        // around, the lateral reading binds it to a. The readings disagree, so no group.
        assert!(!alike(&[("", "y")]));
        // A name only a later table has: the ON term binds it outside (the query around),
        // a WHERE would bind it to d.
        assert!(!alike(&[("", "w")]));
        // A name no table has binds outside in both.
        assert!(alike(&[("", "v")]));
        // A qualifier naming a later table: outside for the ON term, d for a WHERE.
        assert!(!alike(&[("d", "w")]));
        // A WHERE term has no scope: nothing to check.
        let mut where_term = join_on(&[("", "w")], (1, 3));
        where_term.conjuncts[0].scope = None;
        assert!(on_terms_bind_alike(&where_term, &members));
    }

    /// `FROM f, a, b, c WHERE f.k = a.k AND a.x = b.x AND f.z = c.z`: f in the cloud, a, b and
    /// c on the laptop. a and b are joined to each other there, c only to f: the laptop's
    /// relations come in two parts, of which {a, b} can be a group of its own.
    #[test]
    fn a_side_whose_relations_are_not_all_joined_offers_its_joined_parts() {
        let tables = [table("f", ""), table("a", ""), table("b", ""), table("c", "")];
        let schemas = [
            schema(&["k", "z"]),
            schema(&["k", "x"]),
            schema(&["x", "y"]),
            schema(&["z", "w"]),
        ];
        let members: Vec<Member<'_>> = (0..4).map(|i| (i, &tables[i], Arc::clone(&schemas[i]))).collect();
        let rel = |side| Rel {
            side,
            source: String::new(),
            span: (0, 0),
            alias: None,
        };
        let rels = [rel(Side::Remote), rel(Side::Local), rel(Side::Local), rel(Side::Local)];
        let term = |columns: &[(&str, &str)]| Conjunct {
            span: (0, 0),
            columns: columns.iter().map(|(q, n)| (q.to_string(), n.to_string())).collect(),
            has_subquery: false,
            scope: None,
        };
        let mut join = join_on(&[], (0, 4));
        join.conjuncts = vec![
            term(&[("f", "k"), ("a", "k")]),
            term(&[("a", "x"), ("b", "x")]),
            term(&[("f", "z"), ("c", "z")]),
        ];
        let parts = joined_parts(&join, &members, &rels, Side::Local);
        assert_eq!(parts, vec![BTreeSet::from([1, 2])]);
        // Nothing to offer on the cloud's side (one relation), nor once c is joined to b too.
        assert!(joined_parts(&join, &members, &rels, Side::Remote).is_empty());
        join.conjuncts.push(term(&[("b", "y"), ("c", "w")]));
        assert!(joined_parts(&join, &members, &rels, Side::Local).is_empty());
    }
}
