<?xml version="1.0" encoding="UTF-8"?>
<wrapper name="Web">
  <method name="start" key="examples.webshop.web.WebServer" method="start">
    <param value="$this.srname"/>
    <param value="$this.dirLocal"/>
    <param value="$this.base_port"/>
  </method>
  <method name="stop" key="examples.webshop.web.WebServer" method="stop">
    <param value="$this.dirLocal"/>
  </method>
</wrapper>
