#include "endoked/core/config.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace endoked::config {

std::string Origin::str() const {
  if (source.empty()) return "<default>";
  if (line == 0) return source;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  for (auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

namespace {

Origin origin_of(const YAML::Mark& mark, const std::string& source) {
  if (mark.is_null()) return Origin{source, 0, 0};
  return Origin{source, mark.line + 1, mark.column + 1};
}

// A config's tree is small; YAML aliases can make a few lines expand to billions of nodes
// (an "alias bomb"). Past this many, the config is refused.
constexpr std::int64_t kMaxConfigNodes = 200000;
// A config is a few levels deep; an alias inside its own anchor ("&a [*a]") is a cycle that
// would recurse until the stack runs out.
constexpr int kMaxConfigDepth = 64;

Node convert(const YAML::Node& y, const std::string& source, std::int64_t& budget, int depth) {
  ENDOKED_CHECK(--budget >= 0, "config: ", source, " expands to more than ", kMaxConfigNodes,
                " nodes (YAML aliases repeated inside each other?); refusing it");
  Node n;
  n.origin = origin_of(y.Mark(), source);
  ENDOKED_CHECK(depth <= kMaxConfigDepth, "config: ", n.origin.str(), " nests deeper than ",
                kMaxConfigDepth, " levels (a YAML alias inside its own anchor?); refusing it");
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      n.kind = Node::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::kScalar;
      n.scalar = y.Scalar();
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::kSequence;
      for (const auto& item : y) n.items.push_back(convert(item, source, budget, depth + 1));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::kMap;
      for (const auto& kv : y) {
        const std::string key = kv.first.Scalar();
        Node child = convert(kv.second, source, budget, depth + 1);
        child.key_origin = origin_of(kv.first.Mark(), source);
        if (Node* existing = n.find(key)) {
          ENDOKED_FAIL("config: duplicate key '", key, "' at ", child.key_origin.str(),
                       " (first at ", existing->key_origin.str(), ")");
        }
        n.fields.emplace_back(key, std::move(child));
      }
      break;
  }
  return n;
}

Node convert(const YAML::Node& y, const std::string& source) {
  std::int64_t budget = kMaxConfigNodes;
  return convert(y, source, budget, 0);
}

// Maps merge key by key; anything else replaces.
void merge(Node& into, Node from) {
  if (into.kind == Node::Kind::kMap && from.kind == Node::Kind::kMap) {
    for (auto& [k, v] : from.fields) {
      if (Node* existing = into.find(k)) {
        merge(*existing, std::move(v));
      } else {
        into.fields.emplace_back(k, std::move(v));
      }
    }
    return;
  }
  const Origin key_origin = into.key_origin;
  into = std::move(from);
  if (into.key_origin.source.empty()) into.key_origin = key_origin;
}

YAML::Node parse(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    ENDOKED_FAIL("config: cannot parse ", source, ":", e.mark.line + 1, ":", e.mark.column + 1,
                 ": ", e.msg);
  }
}

}  // namespace

Tree::Tree() {
  root_.kind = Node::Kind::kMap;
}

void Tree::merge_file(const std::string& path) {
  std::error_code ec;
  ENDOKED_CHECK(!std::filesystem::is_directory(path, ec), "config: '", path,
                "' is a directory; --config takes a YAML file");
  std::ifstream in(path, std::ios::binary);
  ENDOKED_CHECK(in.good(), "config: cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  merge_text(ss.str(), path);
}

void Tree::merge_text(const std::string& text, const std::string& source) {
  Node n = convert(parse(text, source), source);
  if (n.kind == Node::Kind::kNull) return;  // empty file
  ENDOKED_CHECK(n.kind == Node::Kind::kMap, "config: ", source, " must hold a map at the top");
  merge(root_, std::move(n));
}

void Tree::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  ENDOKED_CHECK(eq != std::string::npos && eq > 0, "config: --set expects key=value, got '",
                assignment, "'");
  const std::string key = assignment.substr(0, eq);
  const std::string source = "--set " + assignment;
  Node value = convert(parse(assignment.substr(eq + 1), source), source);
  if (value.kind == Node::Kind::kNull && eq + 1 == assignment.size()) {
    value.kind = Node::Kind::kScalar;  // "--set a.b=" is the empty string
  }
  value.origin = Origin{source, 0, 0};
  value.key_origin = value.origin;
  Node* at = &root_;
  std::size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
    ENDOKED_CHECK(!part.empty(), "config: empty key part in '", assignment, "'");
    if (at->kind != Node::Kind::kMap) {
      at->kind = Node::Kind::kMap;
      at->items.clear();
      at->scalar.clear();
    }
    Node* child = at->find(part);
    if (!child) {
      at->fields.emplace_back(part, Node{});
      child = &at->fields.back().second;
      child->key_origin = value.origin;
      child->origin = value.origin;
    }
    if (dot == std::string::npos) {
      merge(*child, std::move(value));
      return;
    }
    at = child;
    start = dot + 1;
  }
}

// ---- scalars ----

namespace {
[[noreturn]] void bad_value(const Node& node, const std::string& key, const char* expected) {
  ENDOKED_FAIL("config: key '", key, "' at ", node.origin.str(), ": expected ", expected, ", got '",
               node.kind == Node::Kind::kScalar ? node.scalar : "<non-scalar>", "'");
}

template <typename T>
T parse_integer(const Node& node, const std::string& key, const char* expected) {
  if (node.kind != Node::Kind::kScalar) bad_value(node, key, expected);
  const std::string& s = node.scalar;
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used, 0);
  } catch (...) {
    bad_value(node, key, expected);
  }
  if (used != s.size() || v < static_cast<long long>(std::numeric_limits<T>::min()) ||
      v > static_cast<long long>(std::numeric_limits<T>::max()))
    bad_value(node, key, expected);
  return static_cast<T>(v);
}
}  // namespace

template <>
std::string decode_scalar<std::string>(const Node& node, const std::string& key) {
  if (node.kind != Node::Kind::kScalar) bad_value(node, key, "a string");
  return node.scalar;
}
template <>
bool decode_scalar<bool>(const Node& node, const std::string& key) {
  if (node.kind == Node::Kind::kScalar) {
    const std::string& s = node.scalar;
    if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  }
  bad_value(node, key, "true or false");
}
template <>
int decode_scalar<int>(const Node& node, const std::string& key) {
  return parse_integer<int>(node, key, "an integer");
}
template <>
std::int64_t decode_scalar<std::int64_t>(const Node& node, const std::string& key) {
  return parse_integer<std::int64_t>(node, key, "an integer");
}
template <>
std::uint64_t decode_scalar<std::uint64_t>(const Node& node, const std::string& key) {
  const auto v = parse_integer<std::int64_t>(node, key, "a non-negative integer");
  if (v < 0) bad_value(node, key, "a non-negative integer");
  return static_cast<std::uint64_t>(v);
}
template <>
double decode_scalar<double>(const Node& node, const std::string& key) {
  if (node.kind != Node::Kind::kScalar) bad_value(node, key, "a number");
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(node.scalar, &used);
  } catch (...) {
    bad_value(node, key, "a number");
  }
  if (used != node.scalar.size()) bad_value(node, key, "a number");
  return v;
}

// ---- decoder ----

Decoder::Decoder(const Node* map, std::string path) : map_(map), path_(std::move(path)) {}

void Decoder::expect(const Node& node, Node::Kind kind, const std::string& key) {
  if (node.kind == kind) return;
  static const char* kNames[] = {"null", "a scalar", "a sequence", "a map"};
  ENDOKED_FAIL("config: key '", key, "' at ", node.origin.str(), ": expected ",
               kNames[static_cast<int>(kind)], ", got ", kNames[static_cast<int>(node.kind)]);
}

void Decoder::finish() const {
  if (!map_) return;
  for (const auto& [k, v] : map_->fields) {
    if (seen_.count(k)) continue;
    std::string known;
    for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
    const std::string full = path_.empty() ? k : path_ + "." + k;
    ENDOKED_FAIL("config: unknown key '", full, "' at ", v.key_origin.str(),
                 " (known here: ", known, ")");
  }
}

void Encoder::emit(double value) {
  out_ << fmt::format("{}", value);
}

}  // namespace endoked::config
