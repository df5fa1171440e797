"""Property: whatever INI text comes in, only N2D2PyError ever escapes the parser and build."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from n2d2py import backend
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text

LENET = (Path(__file__).parents[2] / "models" / "LeNet.ini").read_text()
LENET = LENET.replace("Validation=0.2", "Validation=0.2\nDataPath=/nonexistent/mnist")
TOKENS = list("[]=;#\"\\$(){}@,.:% \n\t-+*/0123456789abcKNSxy_") + ["${", "$(", "[sp]", "{{", "{%", "%}", "}}"]


def ini_text(max_size):
    return st.lists(st.sampled_from(TOKENS), max_size=max_size).map("".join)

QUIET = open("/dev/null", "w")


def exercise(text):
    """Parse, read every key in every typed way, then build the network (no data)."""
    try:
        doc = parse_text(text, "fuzz.ini", Diagnostics(stream=QUIET))
        for name in doc.section_names():
            sec = Section(doc, [name])
            for key in list(doc.sections[name].props):
                for read in (sec.get_str, sec.get_int, sec.get_float, sec.get_bool, sec.get_floats, sec.get_list):
                    try:
                        read(key)
                    except N2D2PyError:
                        pass
        from n2d2py import network

        network.build(doc, backend.cpu(1), load_data=False)
    except N2D2PyError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ini_text(300))
def test_random_text(text):
    exercise(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_lenet(data):
    lines = LENET.split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "garble", "insert"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "garble":
            j = data.draw(st.integers(0, max(0, len(lines[i]))))
            lines[i] = lines[i][:j] + data.draw(ini_text(6)) + lines[i][j + 1 :]
        else:
            lines.insert(i, data.draw(ini_text(30)))
    exercise("\n".join(lines))
