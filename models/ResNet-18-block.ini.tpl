; ResNet basic block with batch normalisation (He et al. 2015, the torchvision layout):
; 3x3 conv (stride STRIDES) -> BN + ReLU -> 3x3 conv -> BN, added to the shortcut, then ReLU.
; The shortcut is the input itself, or with PROJECTION_SHORTCUT a 1x1 strided conv + BN.
; Parameters: INPUT, NB_FILTERS, STRIDES [, PROJECTION_SHORTCUT]. Uses [conv_def] and [bn_def]
; of the including file. Creates [<name>_3x3_1], [<name>_3x3_1_bn], [<name>_3x3_2],
; [<name>_3x3_2_bn], optionally [<name>_1x1_proj] and [<name>_1x1_proj_bn], and [<name>_sum].

[{{SECTION_NAME}}_3x3_1] conv_def
Input={{INPUT}}
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}
Padding=1

[{{SECTION_NAME}}_3x3_1_bn] bn_def
Input={{SECTION_NAME}}_3x3_1
NbOutputs={{NB_FILTERS}}
ActivationFunction=Rectifier

[{{SECTION_NAME}}_3x3_2] conv_def
Input={{SECTION_NAME}}_3x3_1_bn
KernelDims=3 3
NbOutputs={{NB_FILTERS}}
Padding=1

[{{SECTION_NAME}}_3x3_2_bn] bn_def
Input={{SECTION_NAME}}_3x3_2
NbOutputs={{NB_FILTERS}}

{% if PROJECTION_SHORTCUT exists %}
[{{SECTION_NAME}}_1x1_proj] conv_def
Input={{INPUT}}
KernelDims=1 1
NbOutputs={{NB_FILTERS}}
Stride={{STRIDES}}

[{{SECTION_NAME}}_1x1_proj_bn] bn_def
Input={{SECTION_NAME}}_1x1_proj
NbOutputs={{NB_FILTERS}}
{% set INPUT %}{{SECTION_NAME}}_1x1_proj_bn{% endset %}
{% endif %}

[{{SECTION_NAME}}_sum]
Input={{SECTION_NAME}}_3x3_2_bn,{{INPUT}}
Type=ElemWise
NbOutputs={{NB_FILTERS}}
Operation=Sum
ActivationFunction=Rectifier
