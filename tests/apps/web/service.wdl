<wrapper name="Service">
  <method name="start" key="tune.testing.RecordingService" method="start">
    <param value="$this.srname"/>
  </method>
  <method name="stop" key="tune.testing.RecordingService" method="stop"/>
  <method name="configure" key="tune.testing.RecordingService" method="configure">
    <param value="$this.srname"/>
    <param value="$arg"/>
  </method>
  <method name="log" key="tune.testing.RecordingService" method="log">
    <param value="$arg"/>
  </method>
</wrapper>
