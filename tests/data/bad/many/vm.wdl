<?xml version="1.0"?>
<wrapper name="VM">
  <method name="start" key="examples.xen_attitune.vm.XenVM" method="start">
    <param value="$this.srname"/>
    <param value="$this.nope"/>
    <param value="$Db.srname"/>
  </method>
</wrapper>
