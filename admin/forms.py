"""Admin page forms (Flask-WTF: every form carries the session's CSRF token). Labels and
messages are Chinese by default; English comes from the translations."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from mall.benefits.models import BENEFIT_KINDS, FUNDERS
from mall.partners.models import PARTNER_CATEGORIES
from mall.points.models import RULE_CATEGORIES

REQUIRED = _l("此项必填")
PHONE = Regexp(r"^(1\d{10})?$", message=_l("请填写11位手机号码"))

CATEGORY_LABELS = {
    "supermarket": _l("信用超市"),
    "wholesale": _l("批发部"),
    "hospital": _l("医院"),
    "scenic_spot": _l("景区"),
    "bus": _l("公交客运"),
    "library": _l("图书馆"),
    "bank": _l("银行"),
    "other": _l("其他"),
}
BENEFIT_KIND_LABELS = {
    "percent_discount": _l("按比例优惠"),
    "fixed_discount": _l("立减金额"),
    "deposit_waiver": _l("免押金"),
    "priority_service": _l("优先服务"),
    "free_item": _l("免费项目"),
}
FUNDER_LABELS = {"partner": _l("商户让利"), "township_fund": _l("乡镇资金")}
RULE_CATEGORY_LABELS = {
    "volunteering": _l("志愿服务"),
    "public_good": _l("公益活动"),
    "customs_reform": _l("移风易俗"),
    "village_rules": _l("村规民约"),
    "other": _l("其他"),
}
STATUS_LABELS = {"active": _l("正常"), "frozen": _l("冻结"), "revoked": _l("撤销")}


class LoginForm(FlaskForm):
    username = StringField(
        _l("用户名"),
        validators=[DataRequired(message=_l("请填写用户名")), Length(max=64)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("密码"),
        validators=[DataRequired(message=_l("请填写密码")), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )


class ConfirmForm(FlaskForm):
    """A destructive action: a reason and an explicit confirmation checkbox."""

    reason = TextAreaField(
        _l("原因"),
        validators=[
            DataRequired(message=_l("请填写原因")),
            Length(max=500, message=_l("最多500字")),
        ],
    )
    confirm = BooleanField(
        _l("我已核对,确认执行此操作"),
        validators=[DataRequired(message=_l("请勾选确认"))],
    )


class CheckboxConfirmForm(FlaskForm):
    confirm = BooleanField(
        _l("我已核对,确认执行此操作"),
        validators=[DataRequired(message=_l("请勾选确认"))],
    )


# ---------------------------------------------------------------- partners


def options(pairs: list[tuple[Any, Any]]) -> list[SelectChoice]:
    """SelectField choices in the form wtforms 3.3 wants (tuples are deprecated)."""
    return [SelectChoice(value=v, label=label) for v, label in pairs]


def _choices(labels: dict[str, Any], keys: tuple[str, ...]) -> list[SelectChoice]:
    return options([(k, labels.get(k, k)) for k in keys])


class PartnerForm(FlaskForm):
    township_id = SelectField(
        _l("所属乡镇"), coerce=int, validators=[InputRequired(message=REQUIRED)]
    )
    name = StringField(
        _l("商户名称"),
        validators=[
            DataRequired(message=_l("请填写商户名称")),
            Length(max=100, message=_l("最多100字")),
        ],
    )
    category = SelectField(
        _l("类别"),
        choices=_choices(CATEGORY_LABELS, PARTNER_CATEGORIES),
        validators=[DataRequired(message=REQUIRED)],
    )
    address = StringField(_l("地址"), validators=[Length(max=200, message=_l("最多200字"))])
    contact_name = StringField(_l("联系人"), validators=[Length(max=64, message=_l("最多64字"))])
    contact_phone = StringField(_l("联系电话"), validators=[Optional(), PHONE])
    accepts_integrity = BooleanField(_l("接受诚信金抵扣"), default=True)
    accepts_points = BooleanField(_l("接受积分兑换"))
    settlement_payee = StringField(
        _l("收款户名"), validators=[Length(max=100, message=_l("最多100字"))]
    )
    settlement_bank = StringField(
        _l("开户银行"), validators=[Length(max=100, message=_l("最多100字"))]
    )
    settlement_account = StringField(
        _l("银行账号"),
        validators=[Optional(), Regexp(r"^\d{8,30}$", message=_l("银行账号须为8至30位数字"))],
    )


class PartnerEditForm(PartnerForm):
    active = BooleanField(_l("启用"))


class TerminalForm(FlaskForm):
    name = StringField(_l("收银台名称"), validators=[Length(max=100, message=_l("最多100字"))])


class CashierForm(FlaskForm):
    username = StringField(
        _l("用户名"),
        validators=[
            DataRequired(message=_l("请填写用户名")),
            Regexp(r"^[A-Za-z0-9_.-]{3,64}$", message=_l("用户名须为3至64位字母、数字或 _ . -")),
        ],
    )
    display_name = StringField(_l("姓名"), validators=[Length(max=64, message=_l("最多64字"))])
    password = PasswordField(
        _l("初始密码"),
        validators=[
            DataRequired(message=_l("请填写密码")),
            Length(min=10, max=128, message=_l("密码须为10至128个字符")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class UserForm(CashierForm):
    role = SelectField(_l("角色"), validators=[DataRequired(message=REQUIRED)])
    region_id = SelectField(
        _l("所属区域"), coerce=int, validators=[InputRequired(message=REQUIRED)]
    )
    partner_id = SelectField(_l("商户(收银员必填)"), coerce=int, validators=[Optional()])


# ---------------------------------------------------------------- benefits and catalogue


class BenefitForm(FlaskForm):
    title_zh = StringField(
        _l("权益名称"), validators=[DataRequired(message=_l("请填写权益名称")), Length(max=100)]
    )
    title_en = StringField(_l("英文名称"), validators=[Length(max=100)])
    description = TextAreaField(_l("说明"), validators=[Length(max=500, message=_l("最多500字"))])
    scope = SelectField(
        _l("适用于"),
        choices=options([("category", _l("某一类商户")), ("partner", _l("指定商户"))]),
        default="category",
    )
    partner_category = SelectField(
        _l("商户类别"),
        choices=_choices(CATEGORY_LABELS, PARTNER_CATEGORIES),
        validators=[Optional()],
    )
    partner_id = SelectField(_l("指定商户"), coerce=int, validators=[Optional()])
    kind = SelectField(_l("权益类型"), choices=_choices(BENEFIT_KIND_LABELS, BENEFIT_KINDS))
    percent = DecimalField(
        _l("优惠比例(%)"),
        places=2,
        validators=[
            Optional(),
            NumberRange(min=0.01, max=100, message=_l("比例须在0.01至100之间")),
        ],
    )
    cap_yuan = DecimalField(
        _l("优惠上限(元)"),
        places=2,
        validators=[Optional(), NumberRange(min=0.01, message=_l("须大于0"))],
    )
    fixed_yuan = DecimalField(
        _l("立减金额(元)"),
        places=2,
        validators=[Optional(), NumberRange(min=0.01, message=_l("须大于0"))],
    )
    min_level_rank = IntegerField(
        _l("最低等级(1为最低)"),
        default=1,
        validators=[
            InputRequired(message=REQUIRED),
            NumberRange(min=1, max=10, message=_l("须在1至10之间")),
        ],
    )
    limit_per_day = IntegerField(
        _l("每户每日次数上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    limit_per_month = IntegerField(
        _l("每户每月次数上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    limit_per_year = IntegerField(
        _l("每户每年次数上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    one_at_a_time = BooleanField(_l("同一时间只能使用一次(如借书免押)"))
    valid_from = DateField(_l("生效日期"), validators=[Optional()])
    valid_until = DateField(_l("截止日期"), validators=[Optional()])
    funded_by = SelectField(_l("资金来源"), choices=_choices(FUNDER_LABELS, FUNDERS))

    def validate(self, extra_validators: Any = None) -> bool:
        # Cross-field rules run here: a field's Optional() stops its own inline validators.
        ok = super().validate(extra_validators)
        checks = [
            (
                self.kind.data == "percent_discount" and self.percent.data is None,
                self.percent,
                _l("按比例优惠须填写优惠比例"),
            ),
            (
                self.kind.data == "fixed_discount" and self.fixed_yuan.data is None,
                self.fixed_yuan,
                _l("立减须填写金额"),
            ),
            (
                self.kind.data == "free_item" and self.cap_yuan.data is None,
                self.cap_yuan,
                _l("免费项目须填写优惠上限(该项目最多值多少钱)"),
            ),
            (
                "scope" in self._fields
                and self.scope.data == "partner"
                and not self.partner_id.data,
                self._fields.get("partner_id"),
                _l("请选择商户"),
            ),
            (
                bool(
                    self.valid_until.data
                    and self.valid_from.data
                    and self.valid_until.data < self.valid_from.data
                ),
                self.valid_until,
                _l("截止日期不能早于生效日期"),
            ),
        ]
        for failed, field, message in checks:
            if failed and field is not None:
                field.errors = [*field.errors, str(message)]
                ok = False
        return ok


class GoodsForm(FlaskForm):
    sku = StringField(
        _l("商品编码"),
        validators=[
            DataRequired(message=_l("请填写商品编码")),
            Regexp(r"^[A-Za-z0-9_.-]{1,40}$", message=_l("编码须为1至40位字母、数字或 _ . -")),
        ],
    )
    name = StringField(
        _l("商品名称"), validators=[DataRequired(message=_l("请填写商品名称")), Length(max=100)]
    )
    points_price = IntegerField(
        _l("兑换积分"),
        validators=[InputRequired(message=REQUIRED), NumberRange(min=1, message=_l("须大于0"))],
    )
    settlement_yuan = DecimalField(
        _l("结算价(元)"),
        places=2,
        validators=[InputRequired(message=REQUIRED), NumberRange(min=0, message=_l("不能为负数"))],
    )
    stock = IntegerField(
        _l("库存"),
        default=0,
        validators=[InputRequired(message=REQUIRED), NumberRange(min=0, message=_l("不能为负数"))],
    )
    min_level_rank = IntegerField(
        _l("最低等级"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    active = BooleanField(_l("上架"), default=True)


# ---------------------------------------------------------------- points


class BatchForm(FlaskForm):
    region_id = SelectField(
        _l("村或乡镇"), coerce=int, validators=[InputRequired(message=REQUIRED)]
    )


class EventForm(FlaskForm):
    household_ref = StringField(
        _l("户编号"), validators=[DataRequired(message=_l("请填写户编号")), Length(max=32)]
    )
    rule_code = SelectField(_l("积分规则"), validators=[DataRequired(message=_l("请选择积分规则"))])
    occurred_on = DateField(_l("发生日期"), validators=[InputRequired(message=_l("请填写日期"))])
    note = StringField(_l("备注"), validators=[Length(max=200, message=_l("最多200字"))])


class ImportForm(FlaskForm):
    region_id = SelectField(
        _l("村或乡镇"), coerce=int, validators=[InputRequired(message=REQUIRED)]
    )
    file = FileField(
        _l("文件(xlsx 或 csv)"),
        validators=[
            FileRequired(message=_l("请选择文件")),
            FileAllowed(["xlsx", "csv"], message=_l("只支持 xlsx 或 csv 文件")),
        ],
    )
    apply_good_rows = BooleanField(_l("有错误行时,仍导入正确的行"))


class DecisionForm(FlaskForm):
    note = TextAreaField(_l("审批意见"), validators=[Length(max=500, message=_l("最多500字"))])


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("驳回原因"), validators=[DataRequired(message=_l("请填写驳回原因")), Length(max=500)]
    )


class RuleForm(FlaskForm):
    region_id = SelectField(
        _l("适用区域"), coerce=int, validators=[InputRequired(message=REQUIRED)]
    )
    code = StringField(
        _l("规则编码"),
        validators=[
            DataRequired(message=_l("请填写规则编码")),
            Regexp(r"^[A-Za-z0-9_.-]{1,32}$", message=_l("编码须为1至32位字母、数字或 _ . -")),
        ],
    )
    name = StringField(
        _l("规则名称"), validators=[DataRequired(message=_l("请填写规则名称")), Length(max=100)]
    )
    category = SelectField(_l("类别"), choices=_choices(RULE_CATEGORY_LABELS, RULE_CATEGORIES))
    points = IntegerField(_l("分值(扣分填负数)"), validators=[InputRequired(message=REQUIRED)])
    cap_week = IntegerField(
        _l("每周上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    cap_month = IntegerField(
        _l("每月上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )
    cap_year = IntegerField(
        _l("每年上限"), validators=[Optional(), NumberRange(min=1, message=_l("须大于0"))]
    )

    def validate_points(self, field: Any) -> None:
        if field.data == 0:
            raise ValidationError(str(_l("分值不能为0")))


# ---------------------------------------------------------------- households


class HouseholdForm(FlaskForm):
    village_id = SelectField(_l("所属村"), coerce=int, validators=[InputRequired(message=REQUIRED)])
    head_name = StringField(
        _l("户主姓名"),
        validators=[
            DataRequired(message=_l("请填写户主姓名")),
            Length(max=30, message=_l("最多30字")),
        ],
    )
    id_number = StringField(
        _l("身份证号"),
        validators=[
            Optional(),
            Regexp(r"^\d{17}[\dXx]$", message=_l("身份证号须为18位:17位数字加1位数字或X")),
        ],
    )
    phone = StringField(_l("手机号"), validators=[Optional(), PHONE])
    members = TextAreaField(
        _l("家庭成员(每行一人:姓名 关系)"),
        validators=[Length(max=2000)],
        render_kw={"rows": 4, "placeholder": "李秀英 配偶"},
    )

    def validate_members(self, field: Any) -> None:
        for n, line in enumerate((field.data or "").splitlines(), start=1):
            if line.strip() and len(line.split()) != 2:
                raise ValidationError(str(_l("第%(n)s行应为“姓名 关系”", n=n)))


class HouseholdImportForm(FlaskForm):
    file = FileField(
        _l("文件(xlsx)"),
        validators=[
            FileRequired(message=_l("请选择文件")),
            FileAllowed(["xlsx"], message=_l("只支持 xlsx 文件")),
        ],
    )
    apply_good_rows = BooleanField(_l("有错误行时,仍导入正确的行"))


class StatusForm(ConfirmForm):
    status = SelectField(
        _l("新状态"),
        choices=options(
            [("frozen", _l("冻结")), ("revoked", _l("撤销")), ("active", _l("恢复正常"))]
        ),
    )


class RevealForm(FlaskForm):
    field = SelectField(
        _l("要查看的信息"),
        choices=options(
            [("name", _l("户主姓名")), ("phone", _l("手机号")), ("id_number", _l("身份证号"))]
        ),
    )
    reason = TextAreaField(
        _l("查看原因(将记入审计日志)"),
        validators=[DataRequired(message=_l("请填写原因")), Length(max=500)],
    )


class PinResetForm(CheckboxConfirmForm):
    new_pin = PasswordField(
        _l("新密码(6位数字,留空则只解除锁定)"),
        validators=[Optional(), Regexp(r"^\d{6}$", message=_l("密码须为6位数字"))],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )


# ---------------------------------------------------------------- ratings


class ScoreForm(FlaskForm):
    """The civility review: base 80, positive items up to +20, negatives deduct, a veto zeroes."""

    positive = TextAreaField(
        _l("加分项(每行:事项 分值)"), validators=[Length(max=2000)], render_kw={"rows": 3}
    )
    negative = TextAreaField(
        _l("扣分项(每行:事项 分值)"), validators=[Length(max=2000)], render_kw={"rows": 3}
    )
    veto = StringField(_l("一票否决事项(如有)"), validators=[Length(max=100)])
    reviewers = TextAreaField(
        _l("评议人(每行一人;与该户有亲属关系的在姓名后写“回避”)"),
        validators=[Length(max=1000)],
        render_kw={"rows": 3},
    )
    visit_score = DecimalField(
        _l("入户走访得分(0-100)"),
        validators=[Optional(), NumberRange(min=0, max=100, message=_l("须在0至100之间"))],
    )
    points_score = DecimalField(
        _l("积分得分(0-100)"),
        validators=[Optional(), NumberRange(min=0, max=100, message=_l("须在0至100之间"))],
    )

    def _items(self, field: Any) -> None:
        for n, line in enumerate((field.data or "").splitlines(), start=1):
            parts = line.split()
            if parts and (len(parts) != 2 or not parts[1].isdigit()):
                raise ValidationError(str(_l("第%(n)s行应为“事项 分值”,分值为非负整数", n=n)))

    def validate_positive(self, field: Any) -> None:
        self._items(field)

    def validate_negative(self, field: Any) -> None:
        self._items(field)


class AppealForm(FlaskForm):
    grounds = TextAreaField(
        _l("复议理由"), validators=[DataRequired(message=_l("请填写复议理由")), Length(max=1000)]
    )


class AnswerForm(ScoreForm):
    answer = TextAreaField(
        _l("答复"), validators=[DataRequired(message=_l("请填写答复")), Length(max=1000)]
    )
    rescore = BooleanField(_l("重新评分(等级改变时重新公示)"))


class DowngradeForm(ConfirmForm):
    level_code = SelectField(_l("降至等级"), validators=[DataRequired(message=REQUIRED)])


# ---------------------------------------------------------------- regions


class SettingsForm(FlaskForm):
    """Each field empty means 'inherit from above'."""

    rating_scheme = SelectField(_l("评级方案"), validators=[Optional()])
    point_value_fen = IntegerField(
        _l("每积分价值(分)"),
        validators=[Optional(), NumberRange(min=1, max=10000, message=_l("须在1至10000之间"))],
    )
    rating_period = SelectField(
        _l("评级周期"),
        choices=options([("", _l("继承上级")), ("year", _l("年")), ("quarter", _l("季度"))]),
        validators=[Optional()],
    )
    notice_days = IntegerField(
        _l("公示天数"),
        validators=[Optional(), NumberRange(min=1, max=60, message=_l("须在1至60之间"))],
    )
    appeal_days = IntegerField(
        _l("复议期限(天)"),
        validators=[Optional(), NumberRange(min=1, max=60, message=_l("须在1至60之间"))],
    )
    appeal_answer_days = IntegerField(
        _l("答复期限(天)"),
        validators=[Optional(), NumberRange(min=1, max=60, message=_l("须在1至60之间"))],
    )
    integrity_money_carry_over = SelectField(
        _l("诚信金结转下期"),
        choices=options([("", _l("继承上级")), ("yes", _l("是")), ("no", _l("否"))]),
        validators=[Optional()],
    )
    offline_floor_limit_yuan = DecimalField(
        _l("离线交易限额(元)"),
        places=2,
        validators=[Optional(), NumberRange(min=0, max=10000, message=_l("须在0至10000之间"))],
    )
    reservation_days = IntegerField(
        _l("预约保留天数"),
        validators=[Optional(), NumberRange(min=1, max=90, message=_l("须在1至90之间"))],
    )
    weight_civility = IntegerField(
        _l("乡风文明评议权重(%)"), validators=[Optional(), NumberRange(min=0, max=100)]
    )
    weight_visit = IntegerField(
        _l("入户走访权重(%)"), validators=[Optional(), NumberRange(min=0, max=100)]
    )
    weight_points = IntegerField(
        _l("积分权重(%)"), validators=[Optional(), NumberRange(min=0, max=100)]
    )

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        weights = [self.weight_civility.data, self.weight_visit.data, self.weight_points.data]
        given = [w for w in weights if w is not None]
        if given and (len(given) != 3 or sum(given) != 100):
            self.weight_points.errors = [
                *self.weight_points.errors,
                str(_l("三项权重须同时填写,合计为100")),
            ]
            ok = False
        return ok


# ---------------------------------------------------------------- settlement


class PaidForm(FlaskForm):
    reference = StringField(
        _l("付款凭证号"),
        validators=[DataRequired(message=REQUIRED), Length(max=100, message=_l("最多100字"))],
    )
    paid_on = DateField(_l("付款日期"), validators=[InputRequired(message=REQUIRED)])
    confirm = BooleanField(
        _l("我已核对金额,确认已向商户付款"),
        validators=[DataRequired(message=_l("请勾选确认"))],
    )


class ReconcileForm(FlaskForm):
    file = FileField(
        _l("商户对账文件(csv 或 xlsx)"),
        validators=[
            FileRequired(message=_l("请选择文件")),
            FileAllowed(["xlsx", "csv"], message=_l("只支持 xlsx 或 csv 文件")),
        ],
    )
