//! What a query reads, from DuckDB's own parser.
//!
//! The local DuckDB serializes a SELECT to JSON (`json_serialize_sql`); this module walks that
//! tree for the relations the query reads: base tables (with the byte offset of their name in
//! the text), table functions (with a `pond_run := …` override, if any), CTE names, and the
//! parts that may run apart (subqueries, set operations' branches, flat joins). The
//! dual-execution session then decides each relation's side and rewrites the text by splicing
//! at those offsets, so the SQL that finally runs is the user's own text, not a re-rendering.

use serde_json::Value;

use pond_duckdb::lexer::TokenKind;

use crate::sql_words::Lexed;

/// A base-table reference as written: `[catalog.][schema.]table [AS alias]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub catalog: String,
    pub schema: String,
    pub table: String,
    pub alias: String,
    /// Byte range of the (possibly qualified, possibly quoted) name in the SQL text.
    pub span: (usize, usize),
}

/// A table function call such as `read_parquet('…', pond_run = 'remote')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    /// The first argument when it is a string constant (the path, for readers).
    pub path: Option<String>,
    /// A `pond_run` / `md_run` override, lower-cased.
    pub run: Option<String>,
    /// Byte range of the override argument, leading comma included, to cut from the text.
    pub run_span: Option<(usize, usize)>,
    /// Byte range of the whole call, when it could be located.
    pub span: Option<(usize, usize)>,
    pub alias: String,
}

/// A query inside the statement: a derived table, a CTE's body or a subquery expression, in
/// parentheses, or a set operation's branch (`SELECT … UNION ALL SELECT …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subquery {
    /// Byte range in the text: a subquery's with its parentheses, a branch's from its SELECT to
    /// the word that ends it.
    pub span: (usize, usize),
    /// Whether each output column is a column reference, a plain `*` or aliased: then its name
    /// is the same to DuckDB and to Pond's cost model.
    pub plain_names: bool,
    /// A set operation's branch: what reads its result lists its columns again ([`Output`]).
    pub branch: Option<Branch>,
}

/// What a set operation's branch outputs, for a query that reads its result in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Whether the set operation ignores the branch's names: it pairs columns by position and
    /// the branch is not its leftmost (whose names the result takes).
    pub names_ignored: bool,
    /// Its output columns, in order.
    pub outputs: Vec<Output>,
}

/// One output column of a set operation's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A bare literal (`'cloud'`, `42`, `NULL`), the byte range of its one token, and its
    /// alias. DuckDB types it from the other branches' columns, so a query run apart would type
    /// it otherwise: what reads the branch's result writes it again instead.
    Literal {
        span: (usize, usize),
        alias: Option<String>,
    },
    /// An expression with an alias, named by it.
    Aliased(String),
    /// A column reference without an alias, named after its column (the last part as written).
    Column(String),
    /// Any other expression without an alias.
    Unnamed,
}

/// A FROM of base tables crossed by commas or joined by `INNER JOIN … ON`: the relations one
/// side holds in it can be joined there before anything crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatJoin {
    /// The spans of its tables' names (as [`TableRef::span`]), in order.
    pub tables: Vec<(usize, usize)>,
    /// The top-level `AND` terms of its WHERE clause and ON conditions.
    pub conjuncts: Vec<Conjunct>,
    /// The SELECT's function calls outside its FROM and WHERE (select list, GROUP BY, HAVING,
    /// ORDER BY), none inside a subquery; `None` when it has window functions, QUALIFY or
    /// several grouping sets, around which a group's rows cannot be aggregated early.
    pub calls: Option<Vec<Call>>,
    /// The columns read inside subqueries of those clauses: an aggregate there whose columns
    /// are all the query's around it belongs to the SELECT, so such a read keeps a group whole.
    pub subquery_columns: Vec<(String, String)>,
}

/// A function call (or operator) in the clauses of a SELECT that run after its join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Lower-cased, as DuckDB's parser names it (`count(*)` is `count_star`).
    pub name: String,
    pub operator: bool,
    /// Byte range of the whole call, when located.
    pub span: Option<(usize, usize)>,
    pub distinct: bool,
    /// No FILTER, no ORDER BY of its own, and no subquery among its arguments.
    pub plain: bool,
    /// How many arguments it takes (`max(x, 3)` is the top three, not a maximum).
    pub arguments: usize,
    /// The columns its arguments read: (qualifier as written or empty, name), lower-cased.
    pub columns: Vec<(String, String)>,
}

/// One top-level `AND` term of a WHERE clause or an ON condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conjunct {
    /// Byte range in the text, its own parentheses included.
    pub span: (usize, usize),
    /// The columns it reads: (qualifier as written or empty, name), lower-cased.
    pub columns: Vec<(String, String)>,
    /// Whether it holds a subquery (which reads relations of its own).
    pub has_subquery: bool,
    /// For a term of an `ON` condition, the range of [`FlatJoin::tables`] its join joins:
    /// DuckDB binds its names there (then among the items before a comma, as a lateral join,
    /// then in the queries around), not among later-joined tables. `None` for a WHERE term,
    /// which sees them all.
    pub scope: Option<(usize, usize)>,
}

impl Subquery {
    /// A column-alias list (`AS e(a, b)`, `WITH c(a, b) AS …`) renames the columns by position,
    /// so the cost model's names for them are not the query's.
    fn renamed(mut self, renamed: bool) -> Self {
        self.plain_names &= !renamed;
        self
    }
}

/// The relations one SELECT reads.
#[derive(Debug, Default, Clone)]
pub struct QueryShape {
    pub tables: Vec<TableRef>,
    pub functions: Vec<FunctionRef>,
    /// Names bound by WITH anywhere in the query; an unqualified reference to one is not a table.
    pub ctes: Vec<String>,
    /// Every column name mentioned (last part, lower-cased).
    pub columns: std::collections::BTreeSet<String>,
    /// Whether the query has a `*` (or `t.*`, `COLUMNS(*)`), or names a table's whole row
    /// (`SELECT c FROM customers c`, a STRUCT of every column).
    pub star: bool,
    /// Names used alone (`c`, not `c.x`), lower-cased: a column's, or a relation's whole row.
    pub bare_names: std::collections::BTreeSet<String>,
    /// Every function call (scalar, aggregate, table) with its byte offset.
    pub calls: Vec<(String, usize)>,
    /// Every subquery that could be located in the text.
    pub subqueries: Vec<Subquery>,
    /// Every SELECT whose FROM is a flat join of base tables.
    pub flat_joins: Vec<FlatJoin>,
    /// How many column references name each table qualifier (`o` of `o.id`), lower-cased.
    pub qualifier_uses: std::collections::BTreeMap<String, usize>,
    /// How many column references name each (qualifier or empty, column), lower-cased.
    pub column_uses: std::collections::BTreeMap<(String, String), usize>,
}

/// Why a statement could not be analyzed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Not a SELECT: DuckDB's serializer only handles queries.
    #[error("not a query: {0}")]
    NotAQuery(String),
    /// The JSON did not have the expected shape, or an offset did not match the text.
    #[error("could not analyze the query: {0}")]
    Shape(String),
}

/// Walks the JSON of `json_serialize_sql(sql)` for one statement.
pub fn analyze(sql: &str, json: &str) -> Result<QueryShape, AnalyzeError> {
    let root: Value = serde_json::from_str(json).map_err(|e| AnalyzeError::Shape(e.to_string()))?;
    if root.get("error").and_then(Value::as_bool) == Some(true) {
        let message = root
            .get("error_message")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        return Err(AnalyzeError::NotAQuery(message));
    }
    let statements = root
        .get("statements")
        .and_then(Value::as_array)
        .ok_or_else(|| AnalyzeError::Shape("no statements".into()))?;
    if statements.len() != 1 {
        return Err(AnalyzeError::Shape(format!(
            "{} statements, expected one",
            statements.len()
        )));
    }
    let mut shape = QueryShape::default();
    walk(&Lexed::new(sql), &statements[0], &mut shape)?;
    // DuckDB binds a name that no column has to the relation of that name: its whole row.
    let whole_row = |t: &TableRef| {
        let name = if t.alias.is_empty() { &t.table } else { &t.alias };
        shape.bare_names.contains(&name.to_lowercase())
    };
    if shape.tables.iter().any(whole_row) {
        shape.star = true;
    }
    Ok(shape)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn location(v: &Value) -> Option<usize> {
    v.get("query_location")
        .and_then(Value::as_u64)
        .filter(|l| *l != u64::MAX)
        .map(|l| l as usize)
}

fn walk(sql: &Lexed<'_>, v: &Value, shape: &mut QueryShape) -> Result<(), AnalyzeError> {
    match v {
        Value::Array(items) => {
            for item in items {
                walk(sql, item, shape)?;
            }
        }
        Value::Object(map) => {
            if let Some(ctes) = map.get("cte_map").and_then(|c| c.get("map")).and_then(Value::as_array) {
                for cte in ctes {
                    let name = text(cte, "key");
                    if !name.is_empty() {
                        shape.ctes.push(name.to_lowercase());
                    }
                    if let Some(query) = cte.get("value").and_then(|v| v.get("query")) {
                        let renamed = cte.get("value").is_some_and(renames_columns);
                        shape
                            .subqueries
                            .extend(subquery(sql, query).map(|s| s.renamed(renamed)));
                    }
                }
            }
            if map.get("type").and_then(Value::as_str) == Some("SUBQUERY")
                && let Some(query) = map.get("subquery")
            {
                shape
                    .subqueries
                    .extend(subquery(sql, query).map(|s| s.renamed(renames_columns(v))));
            }
            if map.get("type").and_then(Value::as_str) == Some("SELECT_NODE") {
                shape.flat_joins.extend(flat_join(sql, v));
            }
            if map.get("type").and_then(Value::as_str) == Some("SET_OPERATION_NODE") {
                let by_position = text(v, "setop_type") != "UNION_BY_NAME";
                for (leaf, leftmost) in [(map.get("left"), true), (map.get("right"), false)] {
                    if let Some(leaf) = leaf.filter(|l| text(l, "type") == "SELECT_NODE") {
                        shape.subqueries.extend(branch(sql, leaf, by_position && !leftmost));
                    }
                }
            }
            match map.get("type").and_then(Value::as_str) {
                Some("BASE_TABLE") if map.contains_key("table_name") => {
                    shape.tables.push(table_ref(sql, v)?);
                    return Ok(());
                }
                Some("TABLE_FUNCTION") => {
                    if let Some(f) = v.get("function") {
                        let mut function = function_ref(sql, f)?;
                        function.alias = text(v, "alias");
                        function.span = location(v).and_then(|start| call_end(sql, start).map(|end| (start, end)));
                        shape.functions.push(function);
                    }
                }
                Some("COLUMN_REF") => {
                    let names = column_names(v);
                    if let [name] = names.as_slice() {
                        shape.bare_names.insert(name.clone());
                    }
                    if let Some((qualifier, name)) = qualified(&names) {
                        shape.columns.insert(name.clone());
                        *shape.column_uses.entry((qualifier, name)).or_default() += 1;
                    }
                    // `t.c`, `s.t.c` or a struct path `t.c.field`: any part but the last may name
                    // a relation.
                    for part in &names[..names.len().saturating_sub(1)] {
                        *shape.qualifier_uses.entry(part.clone()).or_default() += 1;
                    }
                }
                // `#2` names a column by position, as `*` lists them: both change when a join's
                // relations are swapped for its result.
                Some("STAR" | "POSITIONAL_REFERENCE") => shape.star = true,
                Some("FUNCTION") if text(v, "class") == "FUNCTION" => {
                    shape.calls.push((
                        text(v, "function_name").to_lowercase(),
                        location(v).unwrap_or(usize::MAX),
                    ));
                }
                Some("JOIN") => {
                    // USING and NATURAL name join columns without column references.
                    if text(v, "ref_type") == "NATURAL" {
                        shape.star = true;
                    }
                    for c in v.get("using_columns").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(c) = c.as_str() {
                            shape.columns.insert(c.to_lowercase());
                        }
                    }
                }
                _ => {}
            }
            for value in map.values() {
                walk(sql, value, shape)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a table reference or a CTE carries a column-alias list.
fn renames_columns(v: &Value) -> bool {
    ["column_name_alias", "aliases"]
        .iter()
        .any(|key| v.get(key).and_then(Value::as_array).is_some_and(|a| !a.is_empty()))
}

/// The located subquery whose statement JSON is `query` (`{"node": …}`).
fn subquery(sql: &Lexed<'_>, query: &Value) -> Option<Subquery> {
    let (first, last) = locations(query)?;
    let (first_token, last_token) = (sql.token_containing(first)?, sql.token_containing(last)?);
    // Outward from the subquery's first located token: the innermost `(` that opens a query
    // (`SELECT`, `WITH`, `FROM`, `VALUES`) and closes after its last located token.
    let mut depth = 0usize;
    for at in (0..first_token).rev() {
        if sql.is_punct(at, ')') {
            depth += 1;
        } else if sql.is_punct(at, '(') {
            if depth > 0 {
                depth -= 1;
                continue;
            }
            let opens_query = ["select", "with", "from", "values"]
                .iter()
                .any(|w| sql.is_word(at + 1, w));
            let Some(end) = sql.parenthesized_end(at) else { continue };
            if opens_query && end > last_token {
                return Some(Subquery {
                    span: (sql.tokens[at].span.start, sql.tokens[end - 1].span.end),
                    plain_names: plain_names(query.get("node")?),
                    branch: None,
                });
            }
        }
    }
    None
}

/// Words that end a set operation's branch at its depth: the next operation, or the ORDER BY,
/// LIMIT or FETCH that apply to the whole set operation.
const AFTER_BRANCH: &[&str] = &["union", "except", "intersect", "order", "limit", "offset", "fetch"];

/// The set operation's branch `node` (a SELECT_NODE), found in the text from its SELECT to the
/// token before the word, `)`, `;` or end that closes it at its depth. `None` when that span
/// would not hold every located part of it (a parenthesized branch with its own ORDER BY or
/// LIMIT), when no SELECT comes first at that depth (FROM-first syntax, a `VALUES` list, a
/// first located token inside parentheses), or when its outputs cannot be listed again (a
/// `*`, a literal that is not one token).
/// `names_ignored`: the set operation pairs this branch's columns by position, not its names.
fn branch(sql: &Lexed<'_>, node: &Value, names_ignored: bool) -> Option<Subquery> {
    let (first, last) = locations(node)?;
    let (first_token, last_token) = (sql.token_containing(first)?, sql.token_containing(last)?);
    let mut depth = 0usize;
    let mut start = None;
    for at in (0..=first_token).rev() {
        if sql.is_punct(at, ')') {
            depth += 1;
        } else if sql.is_punct(at, '(') {
            depth = depth.checked_sub(1)?;
        } else if depth == 0 && AFTER_BRANCH.iter().any(|w| sql.is_word(at, w)) {
            return None;
        } else if depth == 0 && sql.is_word(at, "select") {
            start = Some(at);
            break;
        }
    }
    let start = start?;
    let end = sql.end_at_depth(start, |at| {
        sql.is_punct(at, ';') || AFTER_BRANCH.iter().any(|w| sql.is_word(at, w))
    });
    if end <= last_token {
        return None;
    }
    let outputs = node
        .get("select_list")
        .and_then(Value::as_array)?
        .iter()
        .map(|e| output(sql, e))
        .collect::<Option<Vec<_>>>()?;
    Some(Subquery {
        span: (sql.tokens[start].span.start, sql.tokens[end - 1].span.end),
        plain_names: plain_names(node),
        branch: Some(Branch { names_ignored, outputs }),
    })
}

/// A branch's output column `e` (an item of its select list); `None` for a `*` or a literal
/// that is not one string, number or NULL token (`-1` is a constant to DuckDB's parser).
fn output(sql: &Lexed<'_>, e: &Value) -> Option<Output> {
    let alias = Some(text(e, "alias")).filter(|a| !a.is_empty());
    match text(e, "class").as_str() {
        "STAR" => None,
        "CONSTANT" => {
            let at = sql.token_at(location(e)?)?;
            let token = &sql.tokens[at];
            let one_token = match &token.kind {
                TokenKind::String | TokenKind::Number => true,
                TokenKind::Word(w) => w == "null",
                _ => false,
            };
            one_token.then_some(Output::Literal {
                span: (token.span.start, token.span.end),
                alias,
            })
        }
        _ if alias.is_some() => alias.map(Output::Aliased),
        "COLUMN_REF" => e
            .get("column_names")
            .and_then(Value::as_array)
            .and_then(|n| n.last())
            .and_then(Value::as_str)
            .map(|c| Output::Column(c.to_string())),
        _ => Some(Output::Unnamed),
    }
}

/// A column reference's parts, lower-cased.
fn column_names(v: &Value) -> Vec<String> {
    v.get("column_names")
        .and_then(Value::as_array)
        .map(|n| n.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
        .unwrap_or_default()
}

/// A column reference's (qualifier or empty, column): its last part and the one before.
fn qualified(names: &[String]) -> Option<(String, String)> {
    let (name, rest) = names.split_last()?;
    Some((rest.last().cloned().unwrap_or_default(), name.clone()))
}

/// Keywords that end a WHERE or an ON condition (at its own depth of parentheses).
const AFTER_CONDITION: &[&str] = &[
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "positional",
    "asof",
    "semi",
    "anti",
    "where",
    "group",
    "having",
    "window",
    "qualify",
    "order",
    "limit",
    "offset",
    "fetch",
    "union",
    "except",
    "intersect",
];

/// The flat join of a SELECT node, if its FROM is one: base tables only, crossed by commas or
/// joined by `INNER JOIN … ON`, with every top-level term of its WHERE and ON conditions
/// located in the text.
fn flat_join(sql: &Lexed<'_>, node: &Value) -> Option<FlatJoin> {
    fn items<'v>(
        sql: &Lexed<'_>,
        from: &'v Value,
        tables: &mut Vec<(usize, usize)>,
        conditions: &mut Vec<(&'v Value, (usize, usize))>,
    ) -> Option<()> {
        match from.get("type").and_then(Value::as_str)? {
            // A sample, a column-alias list or a time-travel clause belongs to its table: the
            // table cannot be swapped for a join's result without it.
            "BASE_TABLE"
                if from.get("sample").is_none_or(Value::is_null)
                    && from.get("at_clause").is_none_or(Value::is_null)
                    && from
                        .get("column_name_alias")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty) =>
            {
                tables.push(table_ref(sql, from).ok()?.span)
            }
            "JOIN" => {
                let condition = from.get("condition").filter(|c| !c.is_null());
                let using = from
                    .get("using_columns")
                    .and_then(Value::as_array)
                    .is_some_and(|u| !u.is_empty());
                let comma = text(from, "ref_type") == "CROSS" && condition.is_none();
                let inner = text(from, "ref_type") == "REGULAR" && text(from, "join_type") == "INNER" && !using;
                if !(comma || (inner && condition.is_some())) {
                    return None;
                }
                let first = tables.len();
                items(sql, from.get("left")?, tables, conditions)?;
                items(sql, from.get("right")?, tables, conditions)?;
                conditions.extend(condition.map(|c| (c, (first, tables.len()))));
            }
            _ => return None,
        }
        Some(())
    }
    let mut spans = Vec::new();
    let mut conditions = Vec::new();
    items(sql, node.get("from_table")?, &mut spans, &mut conditions)?;
    if spans.len() < 2 {
        return None;
    }
    let mut conjuncts = Vec::new();
    if let Some(filter) = node.get("where_clause").filter(|w| !w.is_null()) {
        conjuncts.extend(terms(sql, filter, None)?);
    }
    for (condition, scope) in conditions {
        conjuncts.extend(terms(sql, condition, Some(scope))?);
    }
    let windowed = node.get("qualify").is_some_and(|q| !q.is_null())
        || node
            .get("group_sets")
            .and_then(Value::as_array)
            .is_some_and(|sets| sets.len() > 1);
    let mut calls = Some(Vec::new());
    let mut subquery_columns = Vec::new();
    for clause in ["select_list", "group_expressions", "having", "modifiers"] {
        if let Some(v) = node.get(clause) {
            after_join_calls(sql, v, &mut calls, &mut subquery_columns);
        }
    }
    Some(FlatJoin {
        tables: spans,
        conjuncts,
        calls: calls.filter(|_| !windowed),
        subquery_columns,
    })
}

/// Adds the calls in `v` to `calls` and the columns its subqueries read to
/// `subquery_columns`; a window function makes `calls` `None`.
fn after_join_calls(
    sql: &Lexed<'_>,
    v: &Value,
    calls: &mut Option<Vec<Call>>,
    subquery_columns: &mut Vec<(String, String)>,
) {
    match v {
        Value::Array(items) => items
            .iter()
            .for_each(|i| after_join_calls(sql, i, calls, subquery_columns)),
        Value::Object(map) => {
            match (text(v, "class").as_str(), text(v, "type").as_str()) {
                (_, "SUBQUERY") => {
                    visit(v, &mut |n| {
                        if n.get("type").and_then(Value::as_str) == Some("COLUMN_REF") {
                            subquery_columns.extend(qualified(&column_names(n)));
                        }
                    });
                    return;
                }
                ("WINDOW", _) => {
                    *calls = None;
                    return;
                }
                ("FUNCTION", "FUNCTION") => {
                    let mut columns = Vec::new();
                    let mut has_subquery = false;
                    let children = v.get("children").and_then(Value::as_array);
                    for child in children.into_iter().flatten() {
                        visit(child, &mut |n| match n.get("type").and_then(Value::as_str) {
                            Some("COLUMN_REF") => columns.extend(qualified(&column_names(n))),
                            Some("SUBQUERY") => has_subquery = true,
                            _ => {}
                        });
                    }
                    let ordered = v
                        .get("order_bys")
                        .and_then(|o| o.get("orders"))
                        .and_then(Value::as_array)
                        .is_some_and(|o| !o.is_empty());
                    let operator = v.get("is_operator").and_then(Value::as_bool) == Some(true);
                    let span = if operator {
                        None
                    } else {
                        location(v).and_then(|at| call_end(sql, at).map(|end| (at, end)))
                    };
                    if let Some(calls) = calls.as_mut() {
                        calls.push(Call {
                            name: text(v, "function_name").to_lowercase(),
                            operator,
                            span,
                            distinct: v.get("distinct").and_then(Value::as_bool) == Some(true),
                            plain: !has_subquery
                                && !ordered
                                && v.get("filter").is_none_or(Value::is_null)
                                && v.get("export_state").and_then(Value::as_bool) != Some(true),
                            arguments: children.map_or(0, Vec::len),
                            columns,
                        });
                    }
                }
                _ => {}
            }
            map.values()
                .for_each(|i| after_join_calls(sql, i, calls, subquery_columns));
        }
        _ => {}
    }
}

/// The top-level `AND` terms of a WHERE condition or (with the tables its join sees) an ON
/// condition, located.
fn terms(sql: &Lexed<'_>, condition: &Value, on_scope: Option<(usize, usize)>) -> Option<Vec<Conjunct>> {
    let keyword = if on_scope.is_some() { "on" } else { "where" };
    let terms: Vec<&Value> = if text(condition, "type") == "CONJUNCTION_AND" {
        condition.get("children")?.as_array()?.iter().collect()
    } else {
        vec![condition]
    };
    // Each term starts at its first located token, or at the parentheses opening just before.
    let mut starts = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        let (first, _) = locations(term)?;
        let mut at = sql.token_containing(first)?;
        while at > 0 && sql.is_punct(at - 1, '(') {
            at -= 1;
        }
        let separator = if i == 0 { keyword } else { "and" };
        if at == 0 || !sql.is_word(at - 1, separator) {
            return None;
        }
        starts.push(at);
    }
    // A term ends before the next one's `AND`; the last before what follows the condition.
    let mut ends = Vec::with_capacity(terms.len());
    for i in 0..terms.len() {
        let end = match starts.get(i + 1) {
            Some(next) => next - 1,
            None => sql.end_at_depth(starts[i], |at| {
                sql.is_punct(at, ';') || sql.is_punct(at, ',') || AFTER_CONDITION.iter().any(|w| sql.is_word(at, w))
            }),
        };
        ends.push(end);
    }
    let mut conjuncts = Vec::with_capacity(terms.len());
    for ((term, start), end) in terms.iter().zip(&starts).zip(&ends) {
        let (_, last) = locations(term)?;
        if *end <= *start || sql.token_containing(last)? >= *end || !balanced(sql, *start, *end) {
            return None;
        }
        let mut columns = Vec::new();
        let mut has_subquery = false;
        visit(term, &mut |v| match v.get("type").and_then(Value::as_str) {
            Some("COLUMN_REF") => {
                columns.extend(qualified(&column_names(v)));
            }
            Some("SUBQUERY") => has_subquery = true,
            _ => {}
        });
        conjuncts.push(Conjunct {
            span: (sql.tokens[*start].span.start, sql.tokens[end - 1].span.end),
            columns,
            has_subquery,
            scope: on_scope,
        });
    }
    Some(conjuncts)
}

/// Whether tokens `from..to` close every parenthesis they open, and no other.
fn balanced(sql: &Lexed<'_>, from: usize, to: usize) -> bool {
    let mut depth = 0i32;
    for at in from..to {
        if sql.is_punct(at, '(') {
            depth += 1;
        } else if sql.is_punct(at, ')') {
            depth -= 1;
            if depth < 0 {
                return false;
            }
        }
    }
    depth == 0
}

/// Calls `f` on every object of a JSON subtree.
fn visit(v: &Value, f: &mut dyn FnMut(&Value)) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| visit(i, f)),
        Value::Object(map) => {
            f(v);
            map.values().for_each(|i| visit(i, f));
        }
        _ => {}
    }
}

/// The smallest and largest `query_location` in a JSON subtree.
fn locations(v: &Value) -> Option<(usize, usize)> {
    let mut out: Option<(usize, usize)> = None;
    visit(v, &mut |node| {
        if let Some(l) = location(node) {
            out = Some(out.map_or((l, l), |(a, b)| (a.min(l), b.max(l))));
        }
    });
    out
}

/// Whether a query node's output columns are named alike by DuckDB and by a cost model that
/// names expressions its own way: plain column references, a plain `*`, or aliases.
fn plain_names(node: &Value) -> bool {
    match node.get("type").and_then(Value::as_str) {
        Some("SELECT_NODE") => node.get("select_list").and_then(Value::as_array).is_some_and(|items| {
            items.iter().all(|e| {
                !text(e, "alias").is_empty()
                    || text(e, "class") == "COLUMN_REF"
                    || (text(e, "class") == "STAR"
                        && e.get("columns").and_then(Value::as_bool) != Some(true)
                        && e.get("exclude_list")
                            .and_then(Value::as_array)
                            .is_none_or(Vec::is_empty)
                        && e.get("replace_list")
                            .and_then(Value::as_array)
                            .is_none_or(Vec::is_empty)
                        && e.get("rename_list").and_then(Value::as_array).is_none_or(Vec::is_empty))
            })
        }),
        Some("SET_OPERATION_NODE") => node.get("left").is_some_and(plain_names),
        _ => false,
    }
}

fn table_ref(sql: &Lexed<'_>, v: &Value) -> Result<TableRef, AnalyzeError> {
    let (catalog, schema, table) = (text(v, "catalog_name"), text(v, "schema_name"), text(v, "table_name"));
    let start = location(v).ok_or_else(|| AnalyzeError::Shape(format!("no location for table {table}")))?;
    let (first, end) = sql
        .token_at(start)
        .and_then(|first| Some((first, sql.qualified_name_end(first)?)))
        .ok_or_else(|| AnalyzeError::Shape(format!("table {table} is not at offset {start}")))?;
    let last = sql.identifier(end - 1).unwrap_or_default();
    if !last.eq_ignore_ascii_case(&table) {
        return Err(AnalyzeError::Shape(format!(
            "expected table {table} at offset {start}, found {}",
            sql.text_of(first, end)
        )));
    }
    Ok(TableRef {
        catalog,
        schema,
        table,
        alias: text(v, "alias"),
        span: (start, sql.tokens[end - 1].span.end),
    })
}

fn function_ref(sql: &Lexed<'_>, f: &Value) -> Result<FunctionRef, AnalyzeError> {
    let name = text(f, "function_name").to_lowercase();
    let children = f.get("children").and_then(Value::as_array).cloned().unwrap_or_default();
    let path = children
        .first()
        .filter(|c| text(c, "class") == "CONSTANT")
        .and_then(|c| c.get("value"))
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut run = None;
    let mut run_span = None;
    for child in &children {
        if text(child, "class") != "COMPARISON" {
            continue;
        }
        let (Some(left), Some(right)) = (child.get("left"), child.get("right")) else {
            continue;
        };
        let names = left.get("column_names").and_then(Value::as_array);
        let name = names
            .filter(|n| n.len() == 1)
            .and_then(|n| n[0].as_str())
            .map(str::to_lowercase);
        if !matches!(name.as_deref(), Some("pond_run" | "md_run")) {
            continue;
        }
        let value = match text(right, "class").as_str() {
            "CONSTANT" => right.get("value").and_then(|v| v.get("value")).and_then(Value::as_str),
            "COLUMN_REF" => right
                .get("column_names")
                .and_then(Value::as_array)
                .and_then(|n| n.first())
                .and_then(Value::as_str),
            _ => None,
        };
        let value = value
            .map(str::to_lowercase)
            .ok_or_else(|| AnalyzeError::Shape("pond_run takes 'local', 'remote' or 'auto'".into()))?;
        let (Some(from), Some(value_at)) = (location(left), location(right)) else {
            return Err(AnalyzeError::Shape("no location for pond_run".into()));
        };
        run_span = Some(argument_span(sql, from, value_at)?);
        run = Some(value);
    }
    Ok(FunctionRef {
        name,
        path,
        run,
        run_span,
        span: None,
        alias: String::new(),
    })
}

/// The end of a call `name(…)` starting at `at`: just past its matching parenthesis.
fn call_end(sql: &Lexed<'_>, at: usize) -> Option<usize> {
    let name_end = sql.qualified_name_end(sql.token_at(at)?)?;
    if !sql.is_punct(name_end, '(') {
        return None;
    }
    let end = sql.parenthesized_end(name_end)?;
    Some(sql.tokens[end - 1].span.end)
}

/// The span of `, name = value` given the offsets of `name` and `value`.
fn argument_span(sql: &Lexed<'_>, name_at: usize, value_at: usize) -> Result<(usize, usize), AnalyzeError> {
    let name = sql
        .token_at(name_at)
        .ok_or_else(|| AnalyzeError::Shape("pond_run is not at its offset".into()))?;
    if name == 0 || !sql.is_punct(name - 1, ',') {
        return Err(AnalyzeError::Shape("pond_run must follow another argument".into()));
    }
    let value = sql
        .token_at(value_at)
        .ok_or_else(|| AnalyzeError::Shape("pond_run's value is not at its offset".into()))?;
    Ok((sql.tokens[name - 1].span.start, sql.tokens[value].span.end))
}

/// Splits a written qualified name into its unquoted parts.
pub fn split_qualified(written: &str) -> Vec<String> {
    let lexed = Lexed::new(written);
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(part) = lexed.identifier(at) {
        parts.push(part);
        if !lexed.is_punct(at + 1, '.') {
            break;
        }
        at += 2;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_qualified_names_and_their_parts() {
        let sql = r#"select * from "My ""db""".main.t x"#;
        assert_eq!(split_qualified(&sql[14..]), vec!["My \"db\"", "main", "t"]);
        let lexed = Lexed::new("select * from read_csv($$a)b$$ /* ) */, x := ')') t");
        let end = call_end(&lexed, 14).unwrap();
        assert_eq!(&lexed.text[14..end], "read_csv($$a)b$$ /* ) */, x := ')')");
    }

    /// Each subquery is found with its parentheses, however its first and last located
    /// tokens sit inside nested parentheses of its own.
    #[test]
    fn locates_subqueries_and_whether_their_columns_are_named_plainly() {
        let sql = "WITH s AS (SELECT k, sum(x) AS t FROM db.sales GROUP BY k) \
                   SELECT * FROM (SELECT (a + b) AS ab, k FROM (SELECT 1 AS a, 2 AS b, 3 AS k) i) e \
                   JOIN s USING (k) WHERE e.k IN (SELECT count(*) FROM z) AND e.k <> (SELECT max(k) AS m FROM w)";
        let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
        let shape = analyze(sql, &json).unwrap();
        let mut found: Vec<(&str, bool)> = shape
            .subqueries
            .iter()
            .map(|s| (&sql[s.span.0..s.span.1], s.plain_names))
            .collect();
        found.sort();
        let renamed = "WITH c(x) AS (SELECT k FROM t) SELECT * FROM (SELECT k FROM u) AS e(y), c";
        let json = crate::LocalDb::open(None).unwrap().serialize(renamed).unwrap();
        let shape_renamed = analyze(renamed, &json).unwrap();
        assert_eq!(shape_renamed.subqueries.len(), 2);
        assert!(
            shape_renamed.subqueries.iter().all(|s| !s.plain_names),
            "{shape_renamed:?}"
        );
        assert_eq!(
            found,
            vec![
                ("(SELECT (a + b) AS ab, k FROM (SELECT 1 AS a, 2 AS b, 3 AS k) i)", true),
                ("(SELECT 1 AS a, 2 AS b, 3 AS k)", true),
                ("(SELECT count(*) FROM z)", false),
                ("(SELECT k, sum(x) AS t FROM db.sales GROUP BY k)", true),
                ("(SELECT max(k) AS m FROM w)", true),
            ]
        );
    }

    /// A set operation's branches are found from their SELECT to where the next operation, the
    /// whole operation's ORDER BY or LIMIT, or its parenthesis starts, with their outputs; those
    /// whose names the operation ignores are marked so.
    #[test]
    fn locates_set_operations_branches_and_their_outputs() {
        let branches = |sql: &str| -> Vec<(String, bool, Vec<Output>)> {
            let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
            let shape = analyze(sql, &json).unwrap();
            let mut found: Vec<_> = shape
                .subqueries
                .iter()
                .filter_map(|s| {
                    let b = s.branch.as_ref()?;
                    Some((sql[s.span.0..s.span.1].to_string(), b.names_ignored, b.outputs.clone()))
                })
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        };
        let sql = "SELECT 'l' AS side, region AS k, count(*) AS n FROM customers GROUP BY region \
                   UNION ALL SELECT 'c', o.status, count(*) FROM db.orders o WHERE (x > 1) GROUP BY ALL \
                   EXCEPT SELECT NULL, 2, b FROM (SELECT 1 AS a UNION BY NAME SELECT a FROM t) \
                   ORDER BY 1 FETCH FIRST 3 ROWS ONLY";
        // The literal that starts where `needle` does, `len` bytes long.
        let literal = |needle: &str, len: usize, alias: Option<&str>| {
            let start = sql.find(needle).unwrap();
            Output::Literal {
                span: (start, start + len),
                alias: alias.map(str::to_string),
            }
        };
        use Output::{Aliased, Column, Unnamed};
        assert_eq!(
            branches(sql),
            vec![
                (
                    "SELECT 'c', o.status, count(*) FROM db.orders o WHERE (x > 1) GROUP BY ALL".into(),
                    true,
                    vec![literal("'c'", 3, None), Column("status".into()), Unnamed],
                ),
                (
                    "SELECT 'l' AS side, region AS k, count(*) AS n FROM customers GROUP BY region".into(),
                    false,
                    vec![
                        literal("'l'", 3, Some("side")),
                        Aliased("k".into()),
                        Aliased("n".into())
                    ],
                ),
                ("SELECT 1 AS a".into(), false, vec![literal("1 AS a", 1, Some("a"))]),
                (
                    "SELECT NULL, 2, b FROM (SELECT 1 AS a UNION BY NAME SELECT a FROM t)".into(),
                    true,
                    vec![literal("NULL", 4, None), literal("2, b", 1, None), Column("b".into())],
                ),
                ("SELECT a FROM t".into(), false, vec![Column("a".into())]),
            ]
        );
        // A parenthesized branch is found inside its parentheses, unless it has an ORDER BY
        // or LIMIT of its own; FROM-first syntax, a `*` and a negative literal are not found.
        let sql = "(SELECT a FROM t) UNION (SELECT b FROM u ORDER BY b LIMIT 1) UNION ALL FROM v SELECT c \
                   UNION SELECT * FROM w UNION SELECT -1";
        let found: Vec<String> = branches(sql).into_iter().map(|b| b.0).collect();
        assert_eq!(found, vec!["SELECT a FROM t".to_string()]);
    }

    /// A flat join's terms are found with their own parentheses, a BETWEEN's `AND` inside
    /// one, and the last ends where GROUP BY starts.
    #[test]
    fn locates_a_flat_join_and_its_terms() {
        let sql = "SELECT n_name, sum(l_price) FROM customer, orders o, cloud.lineitem, nation \
                   WHERE c_custkey = o.o_custkey AND (l_x BETWEEN 1 AND 5 OR l_y = 2) \
                   AND l_orderkey IN (SELECT k FROM z) AND c_nationkey = n_nationkey GROUP BY n_name";
        let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
        let shape = analyze(sql, &json).unwrap();
        let [join] = shape.flat_joins.as_slice() else {
            panic!("{:?}", shape.flat_joins)
        };
        let tables: Vec<&str> = join.tables.iter().map(|(a, b)| &sql[*a..*b]).collect();
        assert_eq!(tables, vec!["customer", "orders", "cloud.lineitem", "nation"]);
        let terms: Vec<(&str, bool)> = join
            .conjuncts
            .iter()
            .map(|c| (&sql[c.span.0..c.span.1], c.has_subquery))
            .collect();
        assert_eq!(
            terms,
            vec![
                ("c_custkey = o.o_custkey", false),
                ("(l_x BETWEEN 1 AND 5 OR l_y = 2)", false),
                ("l_orderkey IN (SELECT k FROM z)", true),
                ("c_nationkey = n_nationkey", false),
            ]
        );
        assert_eq!(
            join.conjuncts[0].columns,
            vec![
                (String::new(), "c_custkey".to_string()),
                ("o".to_string(), "o_custkey".to_string())
            ]
        );
        assert_eq!(shape.qualifier_uses.get("o"), Some(&1));
        assert_eq!(shape.column_uses.get(&(String::new(), "c_custkey".into())), Some(&1));
        // INNER JOIN … ON terms count as WHERE terms; an outer join or USING is no flat join.
        let sql = "SELECT 1 FROM a JOIN b ON a.x = b.x AND (b.z > 2) JOIN c ON c.k = b.k, d WHERE a.y = 1";
        let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
        let shape = analyze(sql, &json).unwrap();
        let terms: Vec<&str> = shape.flat_joins[0]
            .conjuncts
            .iter()
            .map(|c| &sql[c.span.0..c.span.1])
            .collect();
        assert_eq!(terms, vec!["a.y = 1", "a.x = b.x", "(b.z > 2)", "c.k = b.k"]);
        // An ON term sees the tables its join joins: not `c` or `d` for the first join, not `d`
        // for the second; a WHERE term sees them all.
        let scopes: Vec<_> = shape.flat_joins[0].conjuncts.iter().map(|c| c.scope).collect();
        assert_eq!(scopes, vec![None, Some((0, 2)), Some((0, 2)), Some((0, 3))]);
        let sql = "SELECT 1 FROM a JOIN (b JOIN c ON b.k = c.k) ON a.x = b.x";
        let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
        let shape = analyze(sql, &json).unwrap();
        let scopes: Vec<_> = shape.flat_joins[0].conjuncts.iter().map(|c| c.scope).collect();
        assert_eq!(scopes, vec![Some((1, 3)), Some((0, 3))]);
        for sql in [
            "SELECT 1 FROM a LEFT JOIN b ON a.x = b.x",
            "SELECT 1 FROM a JOIN b USING (x)",
            "SELECT 1 FROM a AS q(x, p), b WHERE x = b.y",
            "SELECT 1 FROM a, b TABLESAMPLE 10% WHERE a.x = b.x",
        ] {
            let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
            assert!(analyze(sql, &json).unwrap().flat_joins.is_empty(), "{sql}");
        }
        // A positional reference lists columns as `*` does.
        let sql = "SELECT #1 FROM a, b WHERE a.x = b.x";
        let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
        assert!(analyze(sql, &json).unwrap().star);
    }

    #[test]
    fn lists_the_calls_that_run_after_a_flat_join() {
        let calls_of = |sql: &str| {
            let json = crate::LocalDb::open(None).unwrap().serialize(sql).unwrap();
            analyze(sql, &json).unwrap().flat_joins[0].calls.clone()
        };
        let sql = "SELECT n, round(SUM(o.x * (1 - y)), 2), count(*), count(DISTINCT z), \
                   max(w) FILTER (WHERE w > 1), (SELECT max(q) FROM t) \
                   FROM a, b o WHERE a.k = o.k GROUP BY n HAVING min(v) > 0 ORDER BY sum(u)";
        let calls = calls_of(sql).unwrap();
        let summary: Vec<(&str, bool, bool, Option<&str>)> = calls
            .iter()
            .filter(|c| !c.operator)
            .map(|c| (c.name.as_str(), c.distinct, c.plain, c.span.map(|(a, b)| &sql[a..b])))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("round", false, true, Some("round(SUM(o.x * (1 - y)), 2)")),
                ("sum", false, true, Some("SUM(o.x * (1 - y))")),
                ("count_star", false, true, Some("count(*)")),
                ("count", true, true, Some("count(DISTINCT z)")),
                // A FILTER is not part of the call's parentheses, and makes it not plain.
                ("max", false, false, Some("max(w)")),
                ("min", false, true, Some("min(v)")),
                ("sum", false, true, Some("sum(u)")),
            ]
        );
        let sum = calls.iter().find(|c| c.name == "sum").unwrap();
        assert_eq!(
            sum.columns,
            vec![("o".to_string(), "x".to_string()), (String::new(), "y".to_string())]
        );
        // Window functions, QUALIFY and grouping sets keep a group's rows whole.
        for sql in [
            "SELECT sum(x) OVER () FROM a, b WHERE a.k = b.k",
            "SELECT k, sum(x) FROM a, b WHERE a.k = b.k GROUP BY k QUALIFY k > 1",
            "SELECT k, sum(x) FROM a, b WHERE a.k = b.k GROUP BY ROLLUP (k)",
        ] {
            assert_eq!(calls_of(sql), None, "{sql}");
        }
    }

    #[test]
    fn cuts_a_run_override_argument() {
        let sql = "read_parquet('a.parquet', pond_run = 'remote')";
        let span = argument_span(&Lexed::new(sql), 26, 37).unwrap();
        assert_eq!(
            format!("{}{}", &sql[..span.0], &sql[span.1..]),
            "read_parquet('a.parquet')"
        );
        let sql = "read_csv('a.csv',md_run=REMOTE)";
        let span = argument_span(&Lexed::new(sql), 17, 24).unwrap();
        assert_eq!(format!("{}{}", &sql[..span.0], &sql[span.1..]), "read_csv('a.csv')");
    }
}
