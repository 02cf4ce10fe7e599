// Loading MuJoCo scenes and finding things in them by name.
//
// Models are shared (std::shared_ptr with mj_deleteModel) so that a simulator and the kinematic model it hands
// out can both hold one. Everything that looks a name up throws vlascope::Error naming the scene and the object,
// never returns -1 silently.
#pragma once

#include <mujoco/mujoco.h>

#include <memory>
#include <string>

namespace vlascope {

using ModelPtr = std::shared_ptr<mjModel>;

// The folder with vlascope's MJCF files: $VLASCOPE_SCENES if set, else the source tree's scenes/.
std::string scene_dir();
// scene_dir()/name, e.g. scene_path("pick_cube.xml").
std::string scene_path(const std::string& name);

// Compiles an MJCF file. Throws Error with the path and MuJoCo's own message when the file is missing or
// malformed.
ModelPtr load_model(const std::string& path);

// Id of a named object of type `type` (mjOBJ_BODY, mjOBJ_SITE, ...); throws Error naming it and the model.
int require_id(const mjModel* m, mjtObj type, const std::string& name);

// Is `body` inside the subtree rooted at `ancestor` (or equal to it)?
bool body_in_subtree(const mjModel* m, int body, int ancestor);

}  // namespace vlascope
