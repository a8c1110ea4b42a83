#include "endoked/data/csv.h"

#include "endoked/core/error.h"
#include "endoked/core/files.h"

namespace endoked::data {

int CsvTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

CsvTable parse_csv(const std::string& text, char delim, const std::string& where) {
  CsvTable table;
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  int line = 1;
  bool first = true;
  while (i < n) {
    CsvRow row;
    row.line = line;
    std::string field;
    bool in_quotes = false, quoted = false;
    bool end_of_row = false;
    while (i < n && !end_of_row) {
      const char c = text[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field += '"';
            i += 2;
          } else {
            in_quotes = false;
            ++i;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        continue;
      }
      if (c == '"' && field.empty() && !quoted) {
        in_quotes = quoted = true;
        ++i;
      } else if (c == delim) {
        row.fields.push_back(std::move(field));
        field.clear();
        quoted = false;
        ++i;
      } else if (c == '\r' && i + 1 < n && text[i + 1] == '\n') {
        i += 2;
        ++line;
        end_of_row = true;
      } else if (c == '\n') {
        ++i;
        ++line;
        end_of_row = true;
      } else {
        field += c;
        ++i;
      }
    }
    if (in_quotes) {  // the field ran to the end of the file
      ENDOKED_CHECK(!first, where, ":", row.line, ": unterminated quoted field in the header");
      table.unterminated_line = row.line;
      break;
    }
    row.fields.push_back(std::move(field));
    if (row.fields.size() == 1 && row.fields[0].empty()) continue;  // blank line
    if (first) {
      table.header = std::move(row.fields);
      first = false;
    } else {
      table.rows.push_back(std::move(row));
    }
  }
  ENDOKED_CHECK(!first, where, ": empty table (no header)");
  return table;
}

CsvTable read_csv(const std::string& path, char delimiter) {
  if (delimiter == 0) {
    const bool tsv = path.size() >= 4 && (path.compare(path.size() - 4, 4, ".tsv") == 0 ||
                                          path.compare(path.size() - 4, 4, ".tab") == 0);
    delimiter = tsv ? '\t' : ',';
  }
  return parse_csv(files::read_all(path), delimiter, path);
}

std::string csv_field(const std::string& value, char delimiter) {
  if (value.find_first_of(std::string("\"\r\n") + delimiter) == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace endoked::data
