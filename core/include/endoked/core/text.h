#pragma once
// Text encodings of report exports.
#include <optional>
#include <string>
#include <string_view>

namespace endoked::text {

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// Converts GB18030 (a superset of GBK/GB2312, common in Chinese hospital exports) to UTF-8
/// with glibc iconv; nullopt when `s` is not valid GB18030 either.
std::optional<std::string> gb18030_to_utf8(std::string_view s);
/// UTF-8 to GB18030 (used to build test inputs that look like real exports).
std::string utf8_to_gb18030(std::string_view s);

enum class Encoding { kUtf8, kGb18030, kInvalid };
struct Decoded {
  Encoding source = Encoding::kInvalid;
  std::string utf8;  // empty when kInvalid
};
/// UTF-8 is taken as is; otherwise GB18030 is tried. Never guesses beyond these two.
Decoded to_utf8(std::string_view s);

/// Strips leading/trailing ASCII white space and a UTF-8 byte-order mark.
std::string trim(std::string_view s);
/// Lower-case ASCII.
/// ASCII A–Z to a–z; every other byte (UTF-8 sequences included) unchanged.
std::string lower(std::string_view s);
/// The same in place (hot loops that reuse one buffer).
void lower_in_place(std::string& s);

}  // namespace endoked::text
