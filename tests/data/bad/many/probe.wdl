<?xml version="1.0"?>
<wrapper name="Probe">
  <method name="start" key="examples.xen_attitune.vm.XenVM" method="start">
    <param value="$VM.srname"/>
  </method>
</wrapper>
