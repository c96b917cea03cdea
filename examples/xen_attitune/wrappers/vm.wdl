<?xml version="1.0" encoding="UTF-8"?>
<wrapper name="VM">
  <method name="start" key="examples.xen_attitune.vm.XenVM" method="start">
    <param value="$this.srname"/>
    <param value="$this.memory"/>
    <param value="$this.vcpus"/>
    <param value="$this.load"/>
  </method>
  <method name="stop" key="examples.xen_attitune.vm.XenVM" method="stop">
    <param value="$this.srname"/>
  </method>
  <!-- The seed passed the destination host as the second argument of the event:
       "overload VM1 dom0-c".  Without it the placement policy chooses. -->
  <method name="migrate" key="examples.xen_attitune.vm.XenVM" method="migrate">
    <param value="$this.srname"/>
    <param value="$arg2"/>
  </method>
</wrapper>
