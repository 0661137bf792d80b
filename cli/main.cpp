#include <iostream>

#include "agent/engine/engine.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
    // status -d can print 100k lines; stdio synchronisation would dominate that.
    std::ios::sync_with_stdio(false);
    return nb::cli::run_cli(argc, argv, nb::run_agent, nb::cli::process_env());
}
