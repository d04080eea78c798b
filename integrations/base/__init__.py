"""The ports: the small protocols the core talks to the outside world through, and the shapes they
pass, one module per side of the business (ledger, slack, inbound, outbound, payments). `bot/` may
import these and no other part of integrations/."""
