"""The course's grader: reference implementations, hidden checks and the grading CLI."""
import sys

# jsonschema, which nbformat imports, imports rfc3987_syntax when it is installed (Jupyter's
# event library pulls it in), and that module builds a lark grammar at import, slowing the
# start of every command and grading process, for an "iri" format check nothing here uses.
# Marked absent, jsonschema just leaves that one format unchecked.
sys.modules.setdefault("rfc3987_syntax", None)
