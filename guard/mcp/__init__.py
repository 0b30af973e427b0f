"""`guard mcp`: the Model Context Protocol over stdio, so an LLM agent can propose through guard (and only that).

The agent gets tools to read the market, the positions and its own proposals, and to propose. Nothing in
it decides or executes: every proposal goes in front of a person, who approves, changes or rejects it, and
an unanswered one expires. It speaks to the daemon with a source's credential (`guard source add NAME`),
which the daemon itself refuses for anything but proposing, whatever this server offered.
"""
