#pragma once
// CSV/TSV tables as hospitals export them: RFC 4180 quoting (quoted fields may hold delimiters,
// doubled quotes and newlines), CRLF or LF, an optional UTF-8 BOM. Fields are raw bytes: the
// caller decides their encoding (GB18030 bytes never collide with ASCII delimiters or quotes).
#include <string>
#include <vector>

namespace endoked::data {

struct CsvRow {
  int line = 0;  // 1-based line where the row starts
  std::vector<std::string> fields;
};

struct CsvTable {
  std::vector<std::string> header;
  std::vector<CsvRow> rows;
  /// > 0: a quoted field opened on this line never closes, so everything from this line to the
  /// end of the file is not in `rows` (one stray quote must not stop a run over millions of
  /// rows: the caller rejects the rest and says so).
  int unterminated_line = 0;
  /// Index of a header column, or -1.
  int column(const std::string& name) const;
};

/// `delimiter` 0 means: tab for *.tsv / *.tab, else comma. An unterminated quote in the header is
/// an Error naming file and line; in a row it ends the table (unterminated_line). Rows with a
/// field count different from the header are kept (the caller rejects them with their line).
CsvTable read_csv(const std::string& path, char delimiter = 0);
CsvTable parse_csv(const std::string& text, char delimiter, const std::string& where);

/// Quotes a field when needed (for writing tables).
std::string csv_field(const std::string& value, char delimiter = ',');

}  // namespace endoked::data
