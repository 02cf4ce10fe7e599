#include "sim/model.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "common/error.h"

namespace vlascope {

std::string scene_dir() {
  if (const char* env = std::getenv("VLASCOPE_SCENES"); env && *env) return env;
  return VLASCOPE_SCENE_DIR;
}

std::string scene_path(const std::string& name) { return (std::filesystem::path(scene_dir()) / name).string(); }

ModelPtr load_model(const std::string& path) {
  require(std::filesystem::is_regular_file(path), "scene file not found: " + path);
  char error[1024] = "";
  // MuJoCo's XML loader keeps the last parsed model in a global (for mj_saveLastXML); load one file at a time.
  static std::mutex loader;
  std::lock_guard<std::mutex> lock(loader);
  mjModel* m = mj_loadXML(path.c_str(), nullptr, error, sizeof(error));
  if (!m) throw Error("cannot load scene " + path + ": " + (error[0] ? error : "unknown MuJoCo error"));
  return ModelPtr(m, mj_deleteModel);
}

int require_id(const mjModel* m, mjtObj type, const std::string& name) {
  int id = mj_name2id(m, type, name.c_str());
  if (id < 0) {
    const char* kind = type == mjOBJ_BODY       ? "body"
                       : type == mjOBJ_JOINT    ? "joint"
                       : type == mjOBJ_GEOM     ? "geom"
                       : type == mjOBJ_SITE     ? "site"
                       : type == mjOBJ_CAMERA   ? "camera"
                       : type == mjOBJ_LIGHT    ? "light"
                       : type == mjOBJ_ACTUATOR ? "actuator"
                       : type == mjOBJ_KEY      ? "keyframe"
                                                : "object";
    throw Error(std::string("the scene has no ") + kind + " named '" + name + "'");
  }
  return id;
}

bool body_in_subtree(const mjModel* m, int body, int ancestor) {
  while (body > 0) {
    if (body == ancestor) return true;
    body = m->body_parentid[body];
  }
  return body == ancestor;
}

}  // namespace vlascope
