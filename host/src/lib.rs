//! trit-host: the runtime and CLI.
