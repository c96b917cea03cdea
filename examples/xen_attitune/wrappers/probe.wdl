<?xml version="1.0" encoding="UTF-8"?>
<wrapper name="Probe">
  <method name="start" key="tune.probes.cpu.CPUProbe" method="start">
    <param value="$VM.srname"/>
    <param value="$this.threshold"/>
    <param value="$this.hysteresis"/>
    <param value="$this.samples"/>
    <param value="$this.period"/>
  </method>
  <method name="stop" key="tune.probes.cpu.CPUProbe" method="stop"/>
  <!-- After a migration the probe follows its VM to the new host. -->
  <method name="follow" key="tune.probes.cpu.CPUProbe" method="follow">
    <param value="$VM.nodeName"/>
  </method>
</wrapper>
