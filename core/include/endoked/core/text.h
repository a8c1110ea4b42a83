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

enum class Encoding { kUtf8, kGb18030, kLatin1, kCp1252, kInvalid };
/// "utf-8", "gb18030", "latin-1", "cp1252", "invalid".
const char* encoding_name(Encoding e);
/// A user's choice: "auto" → nullopt; "utf-8"/"utf8", "gb18030" (also "gbk", "gb2312"),
/// "latin-1"/"iso-8859-1", "cp1252"/"windows-1252". Throws Error naming `key` otherwise.
std::optional<Encoding> parse_encoding(std::string_view name, std::string_view key);

struct Decoded {
  Encoding source = Encoding::kInvalid;
  std::string utf8;  // empty when kInvalid
  std::string why;   // kInvalid: why it was refused ("not valid UTF-8 or GB18030", …)
};
/// Auto-detection: UTF-8 as is; otherwise GB18030 when it decodes *and* the result reads as
/// Chinese (reads_as_chinese); never guesses beyond these two. Latin-1 text often decodes as
/// GB18030 too (an accented letter and the ASCII letter after it form one "character"): the
/// plausibility rule refuses that and `why` says to set the encoding.
Decoded to_utf8(std::string_view s);
/// Decodes `s` as `forced` when given, else auto-detects.
Decoded to_utf8(std::string_view s, std::optional<Encoding> forced);

/// The plausibility rule for GB18030 bytes and their UTF-8 decoding: at most 25 % of the
/// multi-byte characters have four bytes, or an ASCII second byte inside a Latin word (an ASCII
/// letter just before the pair or just after it: "R|és|ection", "|Äl|ter"; GBK's own such
/// characters, 黃 or 華, stand among Chinese characters), at
/// least 70 % of the non-ASCII characters are CJK (ideographs, CJK and full-width punctuation,
/// the symbols GB2312 carries) and at most 25 % sit between two ASCII letters (where Latin-1
/// accented letters sit: "Gr|ö|ße").
bool reads_as_chinese(std::string_view gb18030, std::string_view utf8);

/// Valid UTF-8 sequences kept, every other byte written as \xHH (lossless with hex()).
std::string escape_invalid_utf8(std::string_view s);
/// Lower-case hex of the bytes, and back (unhex throws Error on odd length or non-hex).
std::string hex(std::string_view bytes);
std::string unhex(std::string_view hex);

/// Strips leading/trailing ASCII white space and a UTF-8 byte-order mark.
std::string trim(std::string_view s);
/// Lower-case ASCII.
/// ASCII A–Z to a–z; every other byte (UTF-8 sequences included) unchanged.
std::string lower(std::string_view s);
/// The same in place (hot loops that reuse one buffer).
void lower_in_place(std::string& s);

}  // namespace endoked::text
