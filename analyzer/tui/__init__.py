"""`migstream browse`: a Textual browser for migration streams (tree, hex, details, diff).

Only `analyzer.tui.app` (and the widgets it imports) needs textual; the CLI hook in
`analyzer.tui.command` and the textual-free models (`entries`, `search`, `diffing`, `values`)
import without it.
"""
