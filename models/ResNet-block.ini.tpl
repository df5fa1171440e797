; One residual block: two 3x3 convolutions and an identity shortcut, or a 1x1 strided
; projection when PROJECTION_SHORTCUT is given. Parameters: INPUT, NB_FILTERS, STRIDES.
; Creates [<name>_3x3_1], [<name>_3x3_2], optionally [<name>_1x1_proj], and [<name>_sum].

[{{SECTION_NAME}}_3x3_1] conv_def
Input={{INPUT}}
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}
Padding=1

[{{SECTION_NAME}}_3x3_2] conv_def
Input={{SECTION_NAME}}_3x3_1
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Padding=1
ActivationFunction=Linear
; ZeroInit: start each residual branch at zero when there are residual branches
WeightsFiller.Scaling=$(0.0 if ${L} > 0 else 1.0)

{% if PROJECTION_SHORTCUT exists %}
[{{SECTION_NAME}}_1x1_proj] conv_def
Input={{INPUT}}
KernelDims=1 1
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}
ActivationFunction=Linear
{% set INPUT %}{{SECTION_NAME}}_1x1_proj{% endset %}
{% endif %}

[{{SECTION_NAME}}_sum]
Input={{SECTION_NAME}}_3x3_2,{{INPUT}}
Type=ElemWise
NbOutputs={{NB_FILTERS}}
Operation=Sum
ActivationFunction=Rectifier
