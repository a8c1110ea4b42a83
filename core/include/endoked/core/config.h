#pragma once
// Typed configuration: options structs decoded from YAML.
//
// A config is a base file, then overlay files (maps merge key by key, scalars and sequences
// replace), then `--set a.b=c` assignments (the value is parsed as YAML). Every value keeps its
// origin (file:line:column, or the --set text), so errors point at the line to fix.
//
// An options struct lists its fields once, in a `visit` member template:
//
//   struct IngestOptions {
//     std::string output = "store";
//     std::int64_t shard_size_mb = 512;
//     template <class V> void visit(V& v) {
//       v("output", output, "store directory to create");
//       v("shard_size_mb", shard_size_mb, "target shard size in MiB");
//     }
//   };
//
// The same list decodes YAML (unknown keys are errors naming file:line:col), writes the resolved
// config, and prints `--help` text with defaults. Nested structs with `visit` are sections.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "endoked/core/error.h"

namespace endoked::config {

struct Origin {
  std::string source;  // file path, "--set a.b=c", or "" for defaults
  int line = 0;        // 1-based; 0 when not from a file
  int column = 0;
  std::string str() const;
};

/// A resolved config tree node: null, scalar, sequence or map (map keys keep file order).
struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<Node> items;                           // kSequence
  std::vector<std::pair<std::string, Node>> fields;  // kMap
  Origin origin;
  Origin key_origin;  // where this node's key was written (for "unknown key" errors)

  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
};

/// Builder of the resolved tree: base + overlays + --set.
class Tree {
 public:
  Tree();
  /// Merges a YAML file over what is there (the first call is the base).
  void merge_file(const std::string& path);
  /// Merges YAML text; `source` names it in errors.
  void merge_text(const std::string& text, const std::string& source);
  /// "a.b.c=value": sets one key (creating maps on the way); value parsed as YAML.
  void set(const std::string& assignment);
  const Node& root() const { return root_; }

 private:
  Node root_;
};

// ---- decoding ----

template <typename T, typename = void>
struct is_section : std::false_type {};
template <typename T>
struct is_section<
    T, std::void_t<decltype(std::declval<T&>().template visit<int>(std::declval<int&>()))>>
    : std::true_type {};

template <typename T>
struct is_vector : std::false_type {};
template <typename T, typename A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <typename T>
struct is_string_map : std::false_type {};
template <typename V>
struct is_string_map<std::map<std::string, V>> : std::true_type {};

/// Decodes one scalar into T (bool, integers, double, string); throws Error naming the origin.
template <typename T>
T decode_scalar(const Node& node, const std::string& key);
template <>
std::string decode_scalar<std::string>(const Node&, const std::string&);
template <>
bool decode_scalar<bool>(const Node&, const std::string&);
template <>
int decode_scalar<int>(const Node&, const std::string&);
template <>
std::int64_t decode_scalar<std::int64_t>(const Node&, const std::string&);
template <>
std::uint64_t decode_scalar<std::uint64_t>(const Node&, const std::string&);
template <>
double decode_scalar<double>(const Node&, const std::string&);

class Decoder {
 public:
  /// `path` is the dotted key of this map ("" at the root).
  Decoder(const Node* map, std::string path);

  template <typename T>
  void operator()(const char* key, T& value, const char* doc = "") {
    seen_.insert(key);
    const Node* child = map_ ? map_->find(key) : nullptr;
    if (!child) return;  // keep the default
    decode(*child, join(key), value);
  }
  /// Keys handled elsewhere (sections of other stages in a pipeline file) are not errors.
  void ignore(const std::set<std::string>& keys) { seen_.insert(keys.begin(), keys.end()); }
  /// Throws on the first key that no field claimed.
  void finish() const;

 private:
  std::string join(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  template <typename T>
  void decode(const Node& node, const std::string& key, T& value) {
    if constexpr (is_section<T>::value) {
      expect(node, Node::Kind::kMap, key);
      Decoder sub(&node, key);
      value.visit(sub);
      sub.finish();
    } else if constexpr (is_vector<T>::value) {
      expect(node, Node::Kind::kSequence, key);
      value.clear();
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        typename T::value_type item{};
        decode(node.items[i], key + "[" + std::to_string(i) + "]", item);
        value.push_back(std::move(item));
      }
    } else if constexpr (is_string_map<T>::value) {
      expect(node, Node::Kind::kMap, key);
      value.clear();
      for (const auto& [k, v] : node.fields)
        value[k] = decode_scalar<std::string>(v, key + "." + k);
    } else {
      value = decode_scalar<T>(node, key);
    }
  }
  static void expect(const Node& node, Node::Kind kind, const std::string& key);

  const Node* map_;
  std::string path_;
  std::set<std::string> seen_;
};

/// Writes an options struct as YAML (the resolved config of a run).
class Encoder {
 public:
  explicit Encoder(YAML::Emitter& out) : out_(out) {}
  template <typename T>
  void operator()(const char* key, const T& value, const char* doc = "") {
    out_ << YAML::Key << key << YAML::Value;
    emit(value);
  }

 private:
  template <typename T>
  void emit(const T& value) {
    if constexpr (is_section<T>::value) {
      out_ << YAML::BeginMap;
      const_cast<T&>(value).visit(*this);
      out_ << YAML::EndMap;
    } else if constexpr (is_vector<T>::value) {
      out_ << YAML::Flow << YAML::BeginSeq;
      for (const auto& v : value) emit(v);
      out_ << YAML::EndSeq;
    } else {
      out_ << value;
    }
  }
  void emit(const std::string& value) { out_ << YAML::DoubleQuoted << value; }
  void emit(const std::map<std::string, std::string>& value) {
    out_ << YAML::BeginMap;
    for (const auto& [k, v] : value) out_ << YAML::Key << k << YAML::Value << v;
    out_ << YAML::EndMap;
  }
  void emit(bool value) { out_ << (value ? "true" : "false"); }
  /// The shortest text that reads back as the same double (0.7, not 0.69999999999999996).
  void emit(double value);
  YAML::Emitter& out_;
};

/// Lists keys with their defaults and docs (for `endoked <command> --help`).
class HelpWriter {
 public:
  explicit HelpWriter(std::string prefix = "") : prefix_(std::move(prefix)) {}
  template <typename T>
  void operator()(const char* key, const T& value, const char* doc = "") {
    const std::string name = prefix_.empty() ? key : prefix_ + "." + key;
    if constexpr (is_section<T>::value) {
      HelpWriter sub(name);
      const_cast<T&>(value).visit(sub);
      text_ += sub.text_;
    } else {
      YAML::Emitter e;
      e << YAML::Flow;
      Encoder enc(e);
      e << YAML::BeginMap;
      enc("v", value);
      e << YAML::EndMap;
      std::string shown = e.c_str();  // "{v: ...}"
      shown = shown.size() > 5 ? shown.substr(4, shown.size() - 5) : shown;
      text_ +=
          "  " + name + " = " + shown + (doc && *doc ? "\n      " + std::string(doc) : "") + "\n";
    }
  }
  const std::string& text() const { return text_; }

 private:
  std::string prefix_;
  std::string text_;
};

/// Decodes the root struct from a tree; `ignored` top-level keys are skipped (other stages).
template <typename T>
void decode(const Node& root, T& value, const std::set<std::string>& ignored = {}) {
  ENDOKED_CHECK(root.kind == Node::Kind::kMap || root.kind == Node::Kind::kNull,
                "config root must be a map (", root.origin.str(), ")");
  Decoder d(root.kind == Node::Kind::kMap ? &root : nullptr, "");
  d.ignore(ignored);
  value.visit(d);
  d.finish();
}

/// YAML text of the resolved options.
template <typename T>
std::string to_yaml(const T& value) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Encoder enc(out);
  const_cast<T&>(value).visit(enc);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

template <typename T>
std::string help_text(const T& value) {
  HelpWriter h;
  const_cast<T&>(value).visit(h);
  return h.text();
}

}  // namespace endoked::config
