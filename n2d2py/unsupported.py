"""What of N2D2 n2d2py does not do yet, refused by name instead of silently ignored.

- ``N2D2_OPTIONS``: N2D2 command-line options (src/utils/Helper.cpp's parser) that n2d2py
  does not implement, with what they do; cli.py refuses them as it refuses its own NOT_YET list.
- ``check_document``: global keys read and honoured only in part (``DefaultDataType`` is
  Float32, ``InsertBatchNormAfterConv`` is off) and quantisation keys anywhere (N2D2's QAT:
  ``QWeight*``, ``QAct*``; its older in-training quantisation: ``ActivationFunction.Quantization*``
  and the keys that went with it, ``<Role>Solver.QuantizationLevels``): a model meant to be
  quantised must not train in float32 and exit 0.
- ``transcode_notice`` / ``refuse_untranscodable``: a Transcode model (N2D2's default when
  ``DefaultModel`` is absent) holding layers without a spiking equivalent is warned about when
  built, and a run that would end in its spike test (``-test``, and ``-learn``, which tests
  after learning) is refused before any learning starts.
"""

import re

from n2d2py.errors import N2D2PyError

N2D2_OPTIONS = {
    "-nbbits": "integer export of weights",
    "-calib-reload": "reusing a previous calibration",
    "-calibOnly": "calibration without export",
    "-qat-sat": "fusing a SAT quantisation-aware training",
    "-testQAT": "testing a quantisation-aware model",
    "-act-clipping-mode": "activation clipping for integer export",
    "-act-rescaling-mode": "activation rescaling for integer export",
    "-act-rescale-per-output": "per-output activation rescaling for integer export",
    "-act-quantile-value": "quantile activation clipping for integer export",
    "-wt-clipping-mode": "weight clipping for integer export",
    "-wt-round-mode": "weight rounding for integer export",
    "-b-round-mode": "bias rounding for integer export",
    "-c-round-mode": "clip rounding for integer export",
    "-no-unsigned": "signed-only integer export",
    "-no-cle": "export without cross-layer equalisation",
    "-db-export": "exporting stimuli with an export",
    "-export-parameters": "export parameters",
    "-pruning": "pruning",
    "-pruning-threshold": "pruning",
    "-finetuning": "fine-tuning after pruning",
    "-testAdv": "adversarial testing",
    "-ts": "clock-based spike simulation",
    "-present-time": "stimulus presentation time of spike simulations",
    "-dynamic-allocation": "dropping slow devices in multi-device learning",
    "-verbose": "verbosity levels",
}

DATA_TYPES = ("Float16", "Float32", "Float64")  # N2D2's DefaultDataType values

# Quantisation keys, wherever written (a layer, its ConfigSection, a base section).
_QUANT_KEY = re.compile(
    r"^(QWeight|QWeightSolver|QAct|QActSolver|QBN|QBNSolver)(\..+)?$"  # QAT (SAT, LSQ)
    r"|^ActivationFunction\.(Quantization\w*|MovingAverage|MA_Window|EMA_Alpha|Log2Rounding\w*)$"
    r"|^(\w*Solvers?)\.Quantization\w*$"  # the solvers' weight quantisation (before 2021)
)


def check_document(doc):
    """Refuse, with the key's file:line, what this model asks and n2d2py would not do."""
    from n2d2py.ini.section import Section

    gsec = Section(doc, [doc.GLOBAL], label=None)
    data_type = gsec.get_enum("DefaultDataType", DATA_TYPES, "Float32")
    if data_type != "Float32":
        raise gsec.error("DefaultDataType", f"DefaultDataType={data_type} is not supported yet: "
                         "n2d2py computes in Float32 (remove the line or write Float32)")
    if gsec.get_bool("InsertBatchNormAfterConv", False):
        raise gsec.error("InsertBatchNormAfterConv", "InsertBatchNormAfterConv=1 is not supported "
                         "yet: write a Type=BatchNorm layer after each Conv (or remove the line)")
    for name, raw in doc.sections.items():
        for key, prop in raw.props.items():
            if not prop.generated and _QUANT_KEY.match(key):
                raise N2D2PyError("quantisation is not supported yet (n2d2py learns and tests "
                                  "in float32 only): remove the quantisation keys",
                                  prop.file, prop.line, prop.section or None, key)


def _first_problem(net_cells, settings):
    if settings.unsupported:
        cell = settings.unsupported[0]
        return cell, f"{cell.type_name} has no spiking equivalent"
    for name, transcoder in settings.transcoders.items():
        problem = getattr(transcoder, "problem", None)
        if problem:
            return net_cells[name], problem
    return None


def _implicit(doc):
    return doc.prop(doc.GLOBAL, "DefaultModel") is None


def _advice(doc, cell):
    if _implicit(doc):
        return ("without a DefaultModel line N2D2's default, Transcode, applies (formal test, "
                "then the spike test): write DefaultModel=Frame before the first section to "
                "learn and test this network formally")
    return (f"write DefaultModel=Frame to learn and test it formally, or remove [{cell.name}] "
            "from the spiking INI")


def transcode_notice(doc, cells, settings):
    """Build time: warn that the spike test of this Transcode model will be refused."""
    found = _first_problem(cells, settings)
    if found is not None:
        cell, why = found
        doc.warn(f"[{cell.name}] {why}, so learning and testing this model (which ends in the "
                 f"spike test) are refused; {_advice(doc, cell)}", section=cell.name)


def refuse_untranscodable(net):
    """Before learning, when the run will test (-test, or -learn/-learn-epoch, which test at
    the end as in N2D2): one line naming the section and the fix."""
    if net.spike is None:
        return
    found = _first_problem(net.cells, net.spike)
    if found is None:
        return
    cell, why = found
    if not _implicit(net.doc):
        from n2d2py.spike import transcode

        transcode.transcode_check(net.spike)  # the spiking INI's own message and fix
    raise cell.section.error(None, f"{why}; {_advice(net.doc, cell)}")
