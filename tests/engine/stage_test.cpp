#include "endoked/engine/stage.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "../common/test_util.h"

namespace endoked::engine {
namespace {

struct WithThreads {
  int threads = 2;
  int size = 5;
  template <class V>
  void visit(V& v) {
    v("threads", threads, "threads per rank");
    v("size", size, "anything");
  }
};
struct WithoutThreads {
  int size = 5;
  template <class V>
  void visit(V& v) {
    v("size", size, "anything");
  }
};

// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

// Under Slurm, a stage's `threads` that no config gives takes SLURM_CPUS_PER_TASK; a value from
// the config or --set wins; a stage without `threads` is untouched.
TEST(StageRegistry, ThreadsComeFromTheSlurmAllocationUnlessGiven) {
  Registry registry;
  registry.add_stage<WithThreads>(
      {"demo", "a stage with threads", {}, [](const WithThreads&, StageContext&) { return StageResult{}; }});
  registry.add_stage<WithoutThreads>(
      {"plain", "a stage without", {}, [](const WithoutThreads&, StageContext&) { return StageResult{}; }});
  const auto resolved = [&](const std::string& stage, const std::vector<std::string>& sets) {
    return registry.prepare(stage, load_tree({}, sets)).resolved_yaml;
  };
  ::unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_NE(resolved("demo", {}).find("threads: 2"), std::string::npos);
  {
    ScopedEnv cpus("SLURM_CPUS_PER_TASK", "6");
    EXPECT_NE(resolved("demo", {}).find("threads: 6"), std::string::npos) << resolved("demo", {});
    EXPECT_NE(resolved("demo", {"demo.threads=3"}).find("threads: 3"), std::string::npos);
    EXPECT_NE(resolved("demo", {"demo.size=9"}).find("threads: 6"), std::string::npos);
    EXPECT_EQ(resolved("plain", {}).find("threads"), std::string::npos);
  }
  {
    ScopedEnv cpus("SLURM_CPUS_PER_TASK", "0");  // nonsense from the environment is ignored
    EXPECT_NE(resolved("demo", {}).find("threads: 2"), std::string::npos);
  }
}

}  // namespace
}  // namespace endoked::engine
