# strongroom-operator: what the runbooks in playbooks/ do with a token, and nothing
# more (written by the strongroom_init role; the operator token holds only this
# policy, without "default").
#   seal.yml                                   sys/seal (root-protected: sudo)
#   step-down.yml, rolling-upgrade.yml         sys/step-down (root-protected: sudo)
#   rotate.yml                                 sys/key-status, then sys/rotate (sudo)
#   revoke-prefix.yml                          sys/leases/revoke-prefix/* and
#                                              revoke-force/* (sudo), then LIST
#                                              sys/leases/lookup/* (sudo) to check
#   every runbook that loads the token         auth/token/renew-self (the token is
#                                              periodic: each run resets its TTL)
# unseal.yml, health, seal-status and leader need no token.
path "sys/seal" {
  capabilities = ["update", "sudo"]
}

path "sys/step-down" {
  capabilities = ["update", "sudo"]
}

path "sys/rotate" {
  capabilities = ["update", "sudo"]
}

path "sys/key-status" {
  capabilities = ["read"]
}

path "sys/leases/revoke-prefix/*" {
  capabilities = ["update", "sudo"]
}

path "sys/leases/revoke-force/*" {
  capabilities = ["update", "sudo"]
}

path "sys/leases/lookup/*" {
  capabilities = ["list", "sudo"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}
