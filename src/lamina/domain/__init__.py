"""Pure rules: ARNs, validation messages, IPAM, IAM policy evaluation, EC2 and security-group
models, layer merge plans, zip checks. No sockets, syscalls, files or SQLite; the clock is passed in."""
