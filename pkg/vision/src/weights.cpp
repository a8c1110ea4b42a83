#include "endoked/vision/weights.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/nn/module.h>
#include <torch/serialize.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <sstream>

#include "endoked/core/error.h"
#include "endoked/core/files.h"

namespace endoked::vision {

const PyValue* PyValue::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (const auto& [k, v] : entries)
    if (k.kind == Kind::kString && k.text == key) return &v;
  return nullptr;
}

const char* PyValue::type_name() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kTensor: return "tensor";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kObject: return "object";
  }
  return "?";
}

namespace {

// ---- the unpickler ----
// Objects on the stack and in the memo are shared (a list or dict is mutated after it was
// memoised, and may be referenced twice). Globals, marks and storages exist only while parsing.
struct Obj;
using ObjP = std::shared_ptr<Obj>;
struct Obj {
  enum class K { kValue, kList, kTuple, kDict, kGlobal, kMark, kStorage } k = K::kValue;
  PyValue value;  // kValue: scalars, strings, tensors
  std::vector<ObjP> items;
  std::vector<std::pair<ObjP, ObjP>> entries;
  std::unordered_map<std::string, std::size_t> index;  // kDict: string key → entry (no O(n²))
  std::string module, name;  // kGlobal
  at::Tensor storage;        // kStorage: 1-D, its dtype
};


at::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"FloatStorage", at::kFloat},   {"DoubleStorage", at::kDouble},
      {"HalfStorage", at::kHalf},     {"BFloat16Storage", at::kBFloat16},
      {"LongStorage", at::kLong},     {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},
      {"ByteStorage", at::kByte},     {"BoolStorage", at::kBool}};
  const auto it = kTypes.find(name);
  ENDOKED_CHECK(it != kTypes.end(), "unsupported storage type torch.", name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& zip, const std::string& where)
      : zip_(zip), where_(where) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  // Every object made is also in all_: the graph (deep, or with cycles from a hostile file) is
  // taken apart here without recursion — children first dropped everywhere, then the objects.
  ~Unpickler() {
    for (auto& o : all_) {
      o->items.clear();
      o->entries.clear();
      o->index.clear();
    }
    stack_.clear();
    memo_.clear();
    storages_.clear();
    all_.clear();
  }

  PyValue run(const char* data, std::size_t size) {
    begin_ = p_ = data;
    end_ = data + size;
    while (true) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;                           // PROTO
        case 0x95: bytes(8); break;                         // FRAME
        case '.': {                                         // STOP
          // A value's size is bounded by the file's: shared objects referenced again and again
          // (a few hundred bytes can describe 2^60 nodes) are refused, not expanded.
          nodes_left_ = 16 * static_cast<std::int64_t>(all_.size()) + 100000;
          bytes_left_ = 4 * static_cast<std::int64_t>(end_ - begin_) + (std::int64_t(64) << 20);
          return to_value(pop(), 0);
        }
        case '(': push(make(Obj::K::kMark)); break;         // MARK
        case '}': push(make(Obj::K::kDict)); break;         // EMPTY_DICT
        case ']': push(make(Obj::K::kList)); break;         // EMPTY_LIST
        case ')': push(make(Obj::K::kTuple)); break;        // EMPTY_TUPLE
        case 't': push(collect(Obj::K::kTuple)); break;     // TUPLE
        case 'l': push(collect(Obj::K::kList)); break;      // LIST
        case 'd': {                                         // DICT
          ObjP d = make(Obj::K::kDict);
          auto items = pop_to_mark();
          set_items(*d, items);
          push(d);
          break;
        }
        case 0x85: push_tuple(1); break;                    // TUPLE1
        case 0x86: push_tuple(2); break;                    // TUPLE2
        case 0x87: push_tuple(3); break;                    // TUPLE3
        case 'a': {                                         // APPEND
          ObjP v = pop();
          top(Obj::K::kList, "APPEND").items.push_back(v);
          break;
        }
        case 'e': {                                         // APPENDS
          auto items = pop_to_mark();
          auto& list = top(Obj::K::kList, "APPENDS").items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {                                         // SETITEM
          ObjP v = pop(), k = pop();
          set_item(top(Obj::K::kDict, "SETITEM"), k, v);
          break;
        }
        case 'u': {                                         // SETITEMS
          auto items = pop_to_mark();
          set_items(top(Obj::K::kDict, "SETITEMS"), items);
          break;
        }
        case 'q': memo_[u8()] = peek(); break;            // BINPUT
        case 'r': memo_[u32()] = peek(); break;             // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = peek(); break;     // MEMOIZE
        case 'h': push(memo(u8())); break;                // BINGET
        case 'j': push(memo(u32())); break;                 // LONG_BINGET
        case 'J': push(integer(static_cast<std::int32_t>(u32()))); break;  // BININT
        case 'K': push(integer(u8())); break;             // BININT1
        case 'M': push(integer(u16())); break;              // BININT2
        case 0x8a: push(integer(long1())); break;           // LONG1
        case 'G': push(number(f64_be())); break;            // BINFLOAT
        case 'N': push(value({})); break;                   // NONE
        case 0x88: push(boolean(true)); break;              // NEWTRUE
        case 0x89: push(boolean(false)); break;             // NEWFALSE
        case 'X': push(string(u32(), PyValue::Kind::kString)); break;        // BINUNICODE
        case 0x8c: push(string(u8(), PyValue::Kind::kString)); break;      // SHORT_BINUNICODE
        case 0x8d: push(string(u64(), PyValue::Kind::kString)); break;       // BINUNICODE8
        case 'T': push(string(u32(), PyValue::Kind::kString)); break;        // BINSTRING
        case 'U': push(string(u8(), PyValue::Kind::kString)); break;       // SHORT_BINSTRING
        case 'B': push(string(u32(), PyValue::Kind::kBytes)); break;         // BINBYTES
        case 'C': push(string(u8(), PyValue::Kind::kBytes)); break;        // SHORT_BINBYTES
        case 'c': {                                         // GLOBAL
          ObjP g = make(Obj::K::kGlobal);
          g->module = line();
          g->name = line();
          push(g);
          break;
        }
        case 0x93: {                                        // STACK_GLOBAL
          ObjP name = pop(), module = pop();
          ObjP g = make(Obj::K::kGlobal);
          g->module = text_of(module, "STACK_GLOBAL");
          g->name = text_of(name, "STACK_GLOBAL");
          push(g);
          break;
        }
        case 'Q': push(persistent_load(pop())); break;      // BINPERSID
        case 'R': {                                         // REDUCE
          ObjP args = pop(), callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 'b': pop(); break;  // BUILD: state of an OrderedDict (_metadata), a tensor, an object
        case 0x81: {                                        // NEWOBJ: cls.__new__(cls, *args)
          ObjP args = pop(), cls = pop();
          if (cls->k != Obj::K::kGlobal) fail("NEWOBJ of something that is not a class");
          push(object(*cls));
          break;
        }
        default:
          fail("unsupported pickle opcode 0x", hex2(op));
      }
    }
  }

 private:
  template <class... A>
  [[noreturn]] void fail(const A&... a) const {
    ENDOKED_FAIL(where_, ": data.pkl at byte ", static_cast<long long>(p_ - begin_), ": ", a...);
  }
  static std::string hex2(unsigned v) {
    const char* h = "0123456789abcdef";
    return {h[(v >> 4) & 15], h[v & 15]};
  }

  char byte() {
    if (p_ >= end_) fail("truncated");
    return *p_++;
  }
  std::uint32_t u8() { return static_cast<unsigned char>(byte()); }
  const char* bytes(std::uint64_t n) {
    if (static_cast<std::uint64_t>(end_ - p_) < n) fail("truncated");
    const char* at = p_;
    p_ += n;
    return at;
  }
  std::uint64_t le(int n) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes(static_cast<std::uint64_t>(n)));
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::uint32_t u16() { return static_cast<std::uint32_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  std::int64_t long1() {
    const auto n = u8();
    if (n > 8) fail("an integer of ", static_cast<int>(n), " bytes");
    if (n == 0) return 0;
    std::uint64_t v = le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t(0) << (8 * n);  // sign-extend
    return static_cast<std::int64_t>(v);
  }
  double f64_be() {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes(8));
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
    double d;
    std::memcpy(&d, &v, 8);
    return d;
  }
  std::string line() {
    const char* start = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ >= end_) fail("truncated GLOBAL");
    return std::string(start, p_++);
  }
  ObjP string(std::uint64_t n, PyValue::Kind kind) {
    PyValue v;
    v.kind = kind;
    v.text.assign(bytes(n), n);
    return value(std::move(v));
  }
  ObjP make(Obj::K k) {
    auto o = std::make_shared<Obj>();
    o->k = k;
    all_.push_back(o);
    return o;
  }
  ObjP value(PyValue v) {
    auto o = make(Obj::K::kValue);
    o->value = std::move(v);
    return o;
  }
  ObjP integer(std::int64_t i) {
    PyValue v;
    v.kind = PyValue::Kind::kInt;
    v.integer = i;
    return value(std::move(v));
  }
  ObjP number(double d) {
    PyValue v;
    v.kind = PyValue::Kind::kFloat;
    v.number = d;
    return value(std::move(v));
  }
  ObjP boolean(bool b) {
    PyValue v;
    v.kind = PyValue::Kind::kBool;
    v.boolean = b;
    return value(std::move(v));
  }

  void push(ObjP o) { stack_.push_back(std::move(o)); }
  ObjP pop() {
    if (stack_.empty()) fail("stack underflow");
    ObjP o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  ObjP peek() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  Obj& top(Obj::K k, const char* op) {
    if (stack_.empty() || stack_.back()->k != k) fail(op, " on the wrong kind of object");
    return *stack_.back();
  }
  ObjP memo(std::uint64_t i) {
    const auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo entry ", i, " was never stored");
    return it->second;
  }
  std::vector<ObjP> pop_to_mark() {
    std::vector<ObjP> items;
    while (true) {
      ObjP o = pop();
      if (o->k == Obj::K::kMark) break;
      items.push_back(std::move(o));
    }
    return {items.rbegin(), items.rend()};
  }
  ObjP collect(Obj::K k) {
    ObjP o = make(k);
    o->items = pop_to_mark();
    return o;
  }
  void push_tuple(int n) {
    ObjP t = make(Obj::K::kTuple);
    t->items.resize(static_cast<std::size_t>(n));
    for (int i = n - 1; i >= 0; --i) t->items[static_cast<std::size_t>(i)] = pop();
    push(t);
  }
  void set_item(Obj& d, ObjP k, ObjP v) {
    if (k->k == Obj::K::kValue && k->value.kind == PyValue::Kind::kString) {
      const auto [it, fresh] = d.index.emplace(k->value.text, d.entries.size());
      if (fresh) d.entries.emplace_back(std::move(k), std::move(v));
      else d.entries[it->second].second = std::move(v);
      return;
    }
    for (auto& [key, val] : d.entries)
      if (same_key(*key, *k)) {
        val = std::move(v);
        return;
      }
    d.entries.emplace_back(std::move(k), std::move(v));
  }
  static bool same_key(const Obj& a, const Obj& b) {
    if (a.k != Obj::K::kValue || b.k != Obj::K::kValue || a.value.kind != b.value.kind) return false;
    switch (a.value.kind) {
      case PyValue::Kind::kString:
      case PyValue::Kind::kBytes: return a.value.text == b.value.text;
      case PyValue::Kind::kInt: return a.value.integer == b.value.integer;
      default: return &a == &b;
    }
  }
  void set_items(Obj& d, const std::vector<ObjP>& items) {
    if (items.size() % 2) fail("SETITEMS with an odd number of items");
    for (std::size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
  }
  std::string text_of(const ObjP& o, const char* what) {
    if (o->k != Obj::K::kValue || o->value.kind != PyValue::Kind::kString) fail(what, ": not a string");
    return o->value.text;
  }
  std::int64_t int_of(const Obj& o, const char* what) {
    if (o.k != Obj::K::kValue || o.value.kind != PyValue::Kind::kInt) fail(what, ": not an int");
    return o.value.integer;
  }
  std::vector<std::int64_t> ints_of(const Obj& o, const char* what) {
    if (o.k != Obj::K::kTuple && o.k != Obj::K::kList) fail(what, ": not a tuple");
    std::vector<std::int64_t> v;
    for (const auto& i : o.items) v.push_back(int_of(*i, what));
    return v;
  }

  // ('storage', torch.<T>Storage, key, location, numel) → the record data/<key> as a 1-D tensor.
  ObjP persistent_load(const ObjP& pid) {
    if (pid->k != Obj::K::kTuple || pid->items.size() < 5 || pid->items[1]->k != Obj::K::kGlobal ||
        text_of(pid->items[0], "persistent id") != "storage")
      fail("an unsupported persistent id (not a tensor storage)");
    const std::string key = text_of(pid->items[2], "storage key");
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dtype = storage_dtype(pid->items[1]->name);
    const std::int64_t numel = int_of(*pid->items[4], "storage size");
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) fail("the archive has no record ", record);
    auto [data, size] = zip_.getRecord(record);
    std::size_t want = 0;
    if (numel < 0 || __builtin_mul_overflow(static_cast<std::size_t>(numel), at::elementSize(dtype), &want) ||
        size != want)
      fail("record ", record, " holds ", size, " bytes, its storage needs ", numel, " elements of ",
           at::elementSize(dtype), " bytes");
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (size) std::memcpy(t.data_ptr(), data.get(), size);
    ObjP s = make(Obj::K::kStorage);
    s->storage = t;
    storages_[key] = s;
    return s;
  }

  ObjP reduce(const Obj& callable, const Obj& args) {
    if (callable.k != Obj::K::kGlobal) fail("REDUCE of something that is not a class or function");
    const std::string f = callable.module + "." + callable.name;
    if (args.k != Obj::K::kTuple) fail(f, ": arguments are not a tuple");
    const auto& a = args.items;
    if (f == "collections.OrderedDict") return make(Obj::K::kDict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->k != Obj::K::kStorage) fail(f, ": unexpected arguments");
      const std::int64_t offset = int_of(*a[1], "storage offset");
      const auto sizes = ints_of(*a[2], "tensor size");
      const auto strides = ints_of(*a[3], "tensor stride");
      if (sizes.size() != strides.size()) fail(f, ": size and stride differ in length");
      // The view must stay inside its storage.
      std::int64_t last = offset;
      bool empty = false, overflow = false;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        if (sizes[i] < 0 || strides[i] < 0) fail(f, ": negative size or stride");
        std::int64_t extent = 0;
        if (sizes[i] == 0) empty = true;
        else overflow = overflow || __builtin_mul_overflow(sizes[i] - 1, strides[i], &extent) ||
                        __builtin_add_overflow(last, extent, &last);
      }
      const std::int64_t numel = a[0]->storage.numel();
      if (offset < 0 || (!empty && (overflow || last >= numel)))
        fail(f, ": a view past the end of its storage (", numel, " elements)");
      PyValue v;
      v.kind = PyValue::Kind::kTensor;
      v.tensor = empty ? at::empty(sizes, a[0]->storage.options())
                       : a[0]->storage.as_strided(sizes, strides, offset);
      return value(std::move(v));
    }
    // LibTorch's own pickle_save (save_state_dict) tags typed containers: the object itself.
    if (f == "torch.jit._pickle.restore_type_tag") {
      if (a.empty()) fail(f, ": no object");
      return a[0];
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->k != Obj::K::kValue || a[0]->value.kind != PyValue::Kind::kTensor)
        fail(f, ": unexpected arguments");
      return a[0];
    }
    // Any other class (argparse.Namespace, numpy scalars, _codecs.encode, user classes) becomes
    // an opaque object naming its class, so that the tensors beside it still load.
    return object(callable);
  }
  ObjP object(const Obj& cls) {
    PyValue v;
    v.kind = PyValue::Kind::kObject;
    v.text = cls.module + "." + cls.name;
    return value(std::move(v));
  }

  PyValue to_value(const ObjP& o, int depth) {
    if (depth > 64) fail("nesting deeper than 64 levels");
    if (--nodes_left_ < 0) fail("the objects expand past the file's size (shared objects repeated)");
    if (o->k == Obj::K::kValue && (bytes_left_ -= static_cast<std::int64_t>(o->value.text.size())) < 0)
      fail("the strings expand past the file's size (one string repeated)");
    PyValue v;
    switch (o->k) {
      case Obj::K::kValue: return o->value;
      case Obj::K::kList:
      case Obj::K::kTuple:
        v.kind = o->k == Obj::K::kList ? PyValue::Kind::kList : PyValue::Kind::kTuple;
        for (const auto& i : o->items) v.items.push_back(to_value(i, depth + 1));
        return v;
      case Obj::K::kDict:
        v.kind = PyValue::Kind::kDict;
        for (const auto& [k, x] : o->entries)
          v.entries.emplace_back(to_value(k, depth + 1), to_value(x, depth + 1));
        return v;
      default: fail("a ", o->k == Obj::K::kGlobal ? "class (" + o->module + "." + o->name + ")" : "storage",
                    " where a value was expected");
    }
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  std::string where_;
  const char* begin_ = nullptr;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  std::vector<ObjP> stack_;
  std::map<std::uint64_t, ObjP> memo_;
  std::map<std::string, ObjP> storages_;
  std::vector<ObjP> all_;
  std::int64_t nodes_left_ = 0, bytes_left_ = 0;

};

std::string shape(const at::Tensor& t) {
  std::string s = "[";
  for (std::size_t i = 0; i < t.sizes().size(); ++i) s += (i ? ", " : "") + std::to_string(t.sizes()[i]);
  return s + "]";
}

bool all_tensors(const PyValue& v) {
  if (v.kind != PyValue::Kind::kDict || v.entries.empty()) return false;
  for (const auto& [k, x] : v.entries)
    if (k.kind != PyValue::Kind::kString || x.kind != PyValue::Kind::kTensor) return false;
  return true;
}

}  // namespace

namespace {
PyValue load_archive(caffe2::serialize::PyTorchStreamReader& zip, const std::string& where) {
  ENDOKED_CHECK(zip.hasRecord("data.pkl"), where, ": the archive has no data.pkl (a TorchScript "
                                                  "module? save a state_dict instead)");
  auto [data, size] = zip.getRecord("data.pkl");
  Unpickler u(zip, where);
  return u.run(static_cast<const char*>(data.get()), size);
}
}  // namespace

PyValue load_torch_bytes(const std::string& bytes, const std::string& where) {
  ENDOKED_CHECK(bytes.compare(0, 4, "PK\x03\x04") == 0, where, " is not a torch.save archive (no zip header)");
  try {
    std::istringstream in(bytes);
    caffe2::serialize::PyTorchStreamReader zip(&in);
    return load_archive(zip, where);
  } catch (const c10::Error& e) {
    ENDOKED_FAIL(where, ": cannot read the archive: ", e.what_without_backtrace());
  }
}

PyValue load_torch_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENDOKED_CHECK(in.good(), "cannot open '", path, "'");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    // The legacy format (PyTorch < 1.6, and old torchvision downloads) starts with a pickle.
    ENDOKED_CHECK(static_cast<unsigned char>(magic[0]) != 0x80, path,
                  " is a legacy (pre-zip) torch.save file, which endoked does not read; re-save it "
                  "once with PyTorch ≥ 1.6: python3 -c \"import torch; "
                  "torch.save(torch.load('OLD', map_location='cpu'), 'NEW')\"");
    ENDOKED_FAIL(path, " is not a torch.save archive (no zip header)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    return load_archive(zip, path);
  } catch (const c10::Error& e) {
    ENDOKED_FAIL(path, ": cannot read the archive: ", e.what_without_backtrace());
  }
}

StateDict state_dict_of(const PyValue& root, const std::string& where) {
  const PyValue* dict = all_tensors(root) ? &root : nullptr;
  for (const char* key : {"state_dict", "model", "model_state_dict", "net"}) {
    if (dict) break;
    if (const PyValue* v = root.get(key); v && all_tensors(*v)) dict = v;
  }
  if (!dict) {
    std::string keys;
    for (const auto& [k, v] : root.entries)
      keys += (keys.empty() ? "" : ", ") + (k.kind == PyValue::Kind::kString ? k.text : "?") + " (" +
              v.type_name() + ")";
    ENDOKED_FAIL(where, ": no state dict (a dict of tensors, itself or under state_dict / model / "
                        "model_state_dict / net); the file holds a ",
                 root.type_name(), keys.empty() ? "" : " with " + keys);
  }
  bool prefixed = true;
  for (const auto& [k, v] : dict->entries) prefixed = prefixed && k.text.rfind("module.", 0) == 0;
  StateDict out;
  for (const auto& [k, v] : dict->entries) out.emplace_back(prefixed ? k.text.substr(7) : k.text, v.tensor);
  return out;
}

StateDict read_state_dict(const std::string& path) {
  return state_dict_of(load_torch_file(path), path);
}

std::string LoadReport::describe() const {
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 8) s += ", … (" + std::to_string(v.size()) + " in all)";
    return s;
  };
  std::string s = std::to_string(loaded) + " tensors loaded";
  if (filled) s += "; " + std::to_string(filled) + " num_batches_tracked set to 0 (absent from the file)";
  if (!missing.empty()) s += "\n  missing from the file: " + list(missing);
  if (!unexpected.empty()) s += "\n  not in the model: " + list(unexpected);
  if (!mismatched.empty()) s += "\n  shape differs: " + list(mismatched);
  return s;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict,
                           const std::string& where) {
  std::map<std::string, const at::Tensor*> file;
  for (const auto& [k, v] : state) file[k] = &v;
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (auto& p : module.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (auto& b : module.named_buffers()) targets.emplace_back(b.key(), b.value());
  LoadReport r;
  std::set<std::string> known;
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;
  std::vector<at::Tensor> zeros;
  for (const auto& [name, target] : targets) {
    known.insert(name);
    const auto it = file.find(name);
    const bool counter = name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;
    if (it == file.end()) {
      if (counter) zeros.push_back(target);
      else r.missing.push_back(name);
    } else if (it->second->sizes() != target.sizes()) {
      r.mismatched.push_back(name + ": file " + shape(*it->second) + " vs model " + shape(target));
    } else {
      copies.emplace_back(target, it->second);
    }
  }
  for (const auto& [k, v] : state)
    if (!known.count(k)) r.unexpected.push_back(k);
  if (strict && !r.ok())
    ENDOKED_FAIL(where, ": the weights do not fit the model: ", r.describe());
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) const_cast<at::Tensor&>(target).copy_(*source);
  for (auto& z : zeros) z.zero_();
  r.loaded = static_cast<std::int64_t>(copies.size());
  r.filled = static_cast<std::int64_t>(zeros.size());
  return r;
}

StateDict state_dict_from(torch::nn::Module& module) {
  StateDict out;
  for (auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value().detach().cpu());
  for (auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value().detach().cpu());
  return out;
}

void save_state_dict(const StateDict& state, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [k, v] : state) dict.insert(k, v.detach().cpu().contiguous());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  files::atomic_write(path, std::string_view(bytes.data(), bytes.size()));
}

}  // namespace endoked::vision
