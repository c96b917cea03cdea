<?xml version="1.0" encoding="UTF-8"?>
<wrapper name="Balancer">
  <method name="start" key="examples.webshop.web.Balancer" method="configure">
    <param value="$this.dirLocal"/>
    <param value="$Web.srname"/>
    <param value="$Web.port"/>
  </method>
  <method name="configure" key="examples.webshop.web.Balancer" method="configure">
    <param value="$this.dirLocal"/>
    <param value="$Web.srname"/>
    <param value="$Web.port"/>
  </method>
</wrapper>
