//! Wire protocol shared by the edgekeep SDK and control plane (no I/O).
