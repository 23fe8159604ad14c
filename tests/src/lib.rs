//! End-to-end test helpers: start the sandbox and the gateway on free ports and talk HTTP to them.
