// Rollouts on disk: one JSON object per episode with every recorded step, so a sharded sweep (`--shard K/N`) can
// keep each finished episode the moment it ends and `vlascope merge` can rebuild the report of an unsharded run
// from the parts. Doubles are written with 17 significant digits: what is read back equals what was run.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "interp/rollout.h"

namespace vlascope {

nlohmann::json rollout_to_json(const RolloutResult& result);
// `source` names the file in errors (a missing or mistyped field is an Error naming it and the field).
RolloutResult rollout_from_json(const nlohmann::json& json, const std::string& source);

// Written to a temporary file first and renamed, so an interrupted run never leaves half an episode.
void write_rollout_file(const std::string& path, const RolloutResult& result);
RolloutResult read_rollout_file(const std::string& path);

}  // namespace vlascope
