<?xml version="1.0" encoding="UTF-8"?>
<wrapper name="Consolidator">
  <method name="start" key="examples.xen_attitune.consolidator.Consolidator" method="start">
    <param value="$this.period"/>
  </method>
  <method name="stop" key="examples.xen_attitune.consolidator.Consolidator" method="stop"/>
  <method name="consolidate" key="examples.xen_attitune.consolidator.Consolidator" method="consolidate">
    <param value="$this.family"/>
    <param value="$this.policy"/>
  </method>
</wrapper>
