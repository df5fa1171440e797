"""N2D2's INI dialect: parsing (parse.py), lazy value resolution (resolve.py), .ini.tpl
templates (template.py) and typed, tracked section views (section.py).

Why not configparser or extended-configparser: N2D2's rules differ at every level — `\\`
continuation before comment stripping, `;`/`#` anywhere outside quotes, `[child] parent`
inheritance, `[S]Key` references resolved lazily against keys generated during the build,
`${VAR}` looked up in the section then the globals, `$(expr)`, and templates — and neither
library keeps the file:line of every value, which our error messages need.
"""

from n2d2py.ini.parse import Document, Prop, RawSection, parse_file, parse_text
from n2d2py.ini.section import Section

__all__ = ["Document", "Prop", "RawSection", "Section", "parse_file", "parse_text"]
