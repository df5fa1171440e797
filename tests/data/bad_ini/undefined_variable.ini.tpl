[{{SECTION_NAME}}_x]
Input={{INPUT}}
Type=Fc
NbOutputs={{NB}}
