//! Server metadata: SqlInfo and XDBC type info, built once at start-up.
//!
//! Keywords and function lists come from DuckDB itself (`duckdb_keywords()`,
//! `duckdb_functions()`), so they are true of the engine that runs the queries. Every SqlInfo
//! key the Flight SQL JDBC driver reads is present: a missing one makes tools like DBeaver fail.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, StringArray};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, SqlTransactionIsolationLevel, SupportedSqlGrammar, XdbcDataType, XdbcDatetimeSubcode,
};
use pond_duckling::{Database, DucklingError};

/// The server's version, reported in SqlInfo.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

struct FunctionLists {
    numeric: Vec<String>,
    string: Vec<String>,
    datetime: Vec<String>,
    system: Vec<String>,
}

fn function_lists() -> Result<(Vec<String>, FunctionLists, String), DucklingError> {
    let db = Database::open(None, &[])?;
    let conn = db.connect()?;
    let one = |sql: &str| -> Result<Vec<String>, DucklingError> {
        let mut out = Vec::new();
        for b in conn.query_all(sql)? {
            if let Some(col) = b.column(0).as_any().downcast_ref::<StringArray>() {
                out.extend(
                    (0..col.len())
                        .filter(|i| !col.is_null(*i))
                        .map(|i| col.value(i).to_string()),
                );
            }
        }
        Ok(out)
    };
    let keywords = one("SELECT upper(keyword_name) FROM duckdb_keywords() ORDER BY 1")?;
    let by_types = |pred: &str| {
        one(&format!(
            "SELECT DISTINCT upper(function_name) FROM duckdb_functions() \
             WHERE function_type = 'scalar' AND function_name NOT LIKE '\\_\\_%' ESCAPE '\\' \
             AND function_name SIMILAR TO '[a-z][a-z0-9_]*' AND ({pred}) ORDER BY 1"
        ))
    };
    let numeric = by_types(
        "return_type IN ('TINYINT','SMALLINT','INTEGER','BIGINT','HUGEINT','FLOAT','DOUBLE','DECIMAL') \
         AND len(parameter_types) > 0 AND list_bool_and([p IN ('TINYINT','SMALLINT','INTEGER','BIGINT','HUGEINT','FLOAT','DOUBLE','DECIMAL','ANY') FOR p IN parameter_types])",
    )?;
    let string = by_types(
        "list_contains(parameter_types, 'VARCHAR') AND return_type IN ('VARCHAR','BIGINT','BOOLEAN','INTEGER')",
    )?;
    let datetime = by_types(
        "return_type IN ('DATE','TIME','TIMESTAMP','TIMESTAMP WITH TIME ZONE','INTERVAL') \
         OR list_has_any(parameter_types, ['DATE','TIME','TIMESTAMP','TIMESTAMP WITH TIME ZONE','INTERVAL'])",
    )?;
    let system = by_types(
        "function_name LIKE 'current\\_%' ESCAPE '\\' OR function_name IN ('version','typeof','user','session_user','alias','stats','txid_current')",
    )?;
    let version = one("SELECT library_version FROM pragma_version()")?
        .pop()
        .unwrap_or_default();
    Ok((
        keywords,
        FunctionLists {
            numeric,
            string,
            datetime,
            system,
        },
        version,
    ))
}

/// Builds the SqlInfo table.
pub fn sql_info() -> Result<SqlInfoData, DucklingError> {
    let (keywords, functions, duckdb_version) = function_lists()?;
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Pond");
    b.append(
        SqlInfo::FlightSqlServerVersion,
        format!("{SERVER_VERSION} (DuckDB {duckdb_version})").as_str(),
    );
    b.append(SqlInfo::FlightSqlServerArrowVersion, "58");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::Transaction as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, true);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, true);
    b.append(SqlInfo::SqlDdlSchema, true);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i64,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i64,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedAtEnd as i64);
    b.append(SqlInfo::SqlKeywords, keywords);
    b.append(SqlInfo::SqlNumericFunctions, functions.numeric);
    b.append(SqlInfo::SqlStringFunctions, functions.string);
    b.append(SqlInfo::SqlSystemFunctions, functions.system);
    b.append(SqlInfo::SqlDatetimeFunctions, functions.datetime);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsConvert, supports_convert());
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmasks: bit n set means the enum value n is supported.
    b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        (1 << SupportedSqlGrammar::SqlMinimumGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlCoreGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlExtendedGrammar as i32),
    );
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b111i32);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, true);
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "database");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0b111i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0b111i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    // DuckDB has no fixed limits for these; 0 means "no limit or unknown" to JDBC.
    for key in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        b.append(key, 0i64);
    }
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    b.append(
        SqlInfo::SqlDefaultTransactionIsolation,
        SqlTransactionIsolationLevel::SqlTransactionSerializable as i64,
    );
    b.append(SqlInfo::SqlTransactionsSupported, true);
    b.append(
        SqlInfo::SqlSupportedTransactionsIsolationLevels,
        1i32 << SqlTransactionIsolationLevel::SqlTransactionSerializable as i32,
    );
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    b.append(SqlInfo::SqlSupportedResultSetTypes, 1i32 << 1);
    b.append(SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified, 0i32);
    b.append(SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly, 1i32 << 1);
    b.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive, 0i32);
    b.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive, 0i32);
    b.append(SqlInfo::SqlBatchUpdatesSupported, true);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, true);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().map_err(|e| DucklingError::Internal(e.to_string()))
}

/// Which JDBC types convert to which: DuckDB casts between all scalar types.
fn supports_convert() -> BTreeMap<i32, Vec<i32>> {
    use arrow_flight::sql::SqlSupportsConvert as C;
    let all: BTreeSet<i32> = [
        C::SqlConvertBigint,
        C::SqlConvertBinary,
        C::SqlConvertBit,
        C::SqlConvertChar,
        C::SqlConvertDate,
        C::SqlConvertDecimal,
        C::SqlConvertFloat,
        C::SqlConvertInteger,
        C::SqlConvertIntervalDayTime,
        C::SqlConvertIntervalYearMonth,
        C::SqlConvertLongvarbinary,
        C::SqlConvertLongvarchar,
        C::SqlConvertNumeric,
        C::SqlConvertReal,
        C::SqlConvertSmallint,
        C::SqlConvertTime,
        C::SqlConvertTimestamp,
        C::SqlConvertTinyint,
        C::SqlConvertVarbinary,
        C::SqlConvertVarchar,
    ]
    .into_iter()
    .map(|c| c as i32)
    .collect();
    all.iter().map(|from| (*from, all.iter().copied().collect())).collect()
}

/// A nullable, non-searchable type with no size: the base every entry refines.
fn xdbc(name: &str, data_type: XdbcDataType) -> XdbcTypeInfo {
    XdbcTypeInfo {
        type_name: name.to_string(),
        data_type,
        column_size: None,
        literal_prefix: None,
        literal_suffix: None,
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: false,
        searchable: Searchable::Basic,
        unsigned_attribute: None,
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.to_string()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: None,
        interval_precision: None,
    }
}

fn numeric(name: &str, data_type: XdbcDataType, digits: i32) -> XdbcTypeInfo {
    XdbcTypeInfo {
        column_size: Some(digits),
        unsigned_attribute: Some(false),
        num_prec_radix: Some(10),
        ..xdbc(name, data_type)
    }
}

fn literal(name: &str, data_type: XdbcDataType, size: Option<i32>, prefix: &str) -> XdbcTypeInfo {
    XdbcTypeInfo {
        column_size: size,
        literal_prefix: Some(prefix.to_string()),
        literal_suffix: Some("'".to_string()),
        ..xdbc(name, data_type)
    }
}

/// Builds the XDBC type table for DuckDB's types.
pub fn xdbc_type_info() -> Result<XdbcTypeInfoData, DucklingError> {
    use XdbcDataType as T;
    let mut b = XdbcTypeInfoDataBuilder::new();
    let decimal = XdbcTypeInfo {
        create_params: Some(vec!["precision".into(), "scale".into()]),
        fixed_prec_scale: true,
        minimum_scale: Some(0),
        maximum_scale: Some(38),
        ..numeric("DECIMAL", T::XdbcDecimal, 38)
    };
    let varchar = XdbcTypeInfo {
        case_sensitive: true,
        searchable: Searchable::Full,
        ..literal("VARCHAR", T::XdbcVarchar, None, "'")
    };
    for info in [
        XdbcTypeInfo {
            column_size: Some(1),
            ..xdbc("BOOLEAN", T::XdbcBit)
        },
        numeric("TINYINT", T::XdbcTinyint, 3),
        numeric("SMALLINT", T::XdbcSmallint, 5),
        numeric("INTEGER", T::XdbcInteger, 10),
        numeric("BIGINT", T::XdbcBigint, 19),
        numeric("HUGEINT", T::XdbcNumeric, 38),
        numeric("FLOAT", T::XdbcReal, 24),
        numeric("DOUBLE", T::XdbcDouble, 53),
        decimal,
        varchar,
        literal("BLOB", T::XdbcVarbinary, None, "'"),
        literal("DATE", T::XdbcDate, Some(10), "DATE '"),
        literal("TIME", T::XdbcTime, Some(15), "TIME '"),
        XdbcTypeInfo {
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ..literal("TIMESTAMP", T::XdbcTimestamp, Some(26), "TIMESTAMP '")
        },
        XdbcTypeInfo {
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone),
            ..literal("TIMESTAMP WITH TIME ZONE", T::XdbcTimestamp, Some(32), "TIMESTAMPTZ '")
        },
        literal("INTERVAL", T::XdbcInterval, None, "INTERVAL '"),
        literal("UUID", T::XdbcVarchar, Some(36), "'"),
    ] {
        b.append(info);
    }
    b.build().map_err(|e| DucklingError::Internal(e.to_string()))
}
