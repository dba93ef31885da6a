"""Security regressions, each written from the attacker's side: hostile code or input inside a container
or at an entry point, and proof that it cannot reach a host file, descriptor or process."""
