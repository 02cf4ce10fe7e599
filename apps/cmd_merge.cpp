// vlascope merge: the parts of a sharded run (eval or steer-experiment with --shard K/N) into the report of one
// unsharded run (apps/sharding.h).
#include <filesystem>

#include "apps/commands.h"
#include "apps/sharding.h"
#include "common/cli.h"
#include "common/error.h"

namespace vlascope {

int run_merge(int argc, char** argv) {
  ArgParser args("vlascope merge",
                 "Combine the shards of a sharded `vlascope eval` or `vlascope steer-experiment` (--shard K/N) into\n"
                 "the report of one unsharded run. Refuses parts of different experiments (checkpoint weights, sets,\n"
                 "seeds, conditions, options), naming the files, and names any shard or rollout that is missing.");
  args.required("out", "output directory of the combined report");
  args.required("parts", "the shards' output directories, comma-separated (e.g. sweep/shard_0,sweep/shard_1)");
  if (!args.parse(argc, argv)) return 0;
  const ShardedRun shards = read_shards(args.get_list("parts"));
  const std::string command = shards.run.value("command", "");
  if (command == "eval")
    merge_eval_shards(shards, args.get("out"));
  else if (command == "steer-experiment")
    merge_steer_shards(shards, args.get("out"));
  else
    throw Error("merge: " + shards.dirs.begin()->second + "/run.json is from '" + command +
                "', which merge does not know (eval, steer-experiment)");
  return 0;
}

}  // namespace vlascope
