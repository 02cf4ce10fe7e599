// Command-line options for the `vlascope` subcommands.
//
//   ArgParser args("vlascope collect", "Record scripted demonstrations into an HDF5 dataset.");
//   args.option("episodes", "100", "number of episodes");
//   args.required("out", "output .h5 file");
//   args.flag("resume", "append to an existing file");
//   if (!args.parse(argc, argv)) return 0;   // --help was printed
//   int n = args.get_int("episodes");
//
// Options are written --name value or --name=value. Unknown options, missing values and unparsable
// numbers are errors that name the option.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vlascope {

class ArgParser {
 public:
  ArgParser(std::string program, std::string summary);

  void option(const std::string& name, const std::string& default_value, const std::string& help);
  void required(const std::string& name, const std::string& help);
  void flag(const std::string& name, const std::string& help);
  void positional(const std::string& name, const std::string& help);  // required, in declaration order

  // Returns false when --help was asked for (help is printed to stdout). Throws Error on bad input.
  bool parse(int argc, char** argv, int first = 1);

  std::string get(const std::string& name) const;
  int get_int(const std::string& name) const;
  int64_t get_int64(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool get_flag(const std::string& name) const;
  std::vector<std::string> get_list(const std::string& name) const;  // comma-separated; empty string → {}
  std::vector<double> get_doubles(const std::string& name) const;    // comma-separated numbers
  bool given(const std::string& name) const;                          // set on the command line
  // What was set on the command line, as arguments that parse back to the same values ("--name=value", "--flag",
  // positionals in order), leaving out the options named in `except`: a command line for a child process.
  std::vector<std::string> given_arguments(const std::vector<std::string>& except) const;

  std::string help() const;

 private:
  struct Spec {
    std::string name, help;
    std::optional<std::string> default_value;
    bool is_flag = false, is_positional = false;
  };
  const Spec& spec(const std::string& name) const;

  std::string program_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
};

// The non-empty items of text between separators: "a;;b;" → {"a", "b"}.
std::vector<std::string> split_nonempty(const std::string& text, char separator);
// "a:b" → {a, b}; an Error "<option>: '<text>' must be <form>" when there is no colon.
std::pair<std::string, std::string> split_pair(const std::string& text, const std::string& option,
                                               const std::string& form);
// A number as an option or a label writes it: %g (4, 0.16, -8).
std::string format_number(double x);

}  // namespace vlascope
